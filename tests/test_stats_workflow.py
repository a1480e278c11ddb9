"""Aggregate -> statistics -> figures -> report of the shared finished run
(tests/conftest.py), and the stand-alone figures entry point on archived tables."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, SNAKEMAKE

_spec = importlib.util.spec_from_file_location("report_screenshot",
                                               REPO / "tools" / "report_screenshot.py")
report_screenshot = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(report_screenshot)

pytestmark = pytest.mark.workflow


def _smk(workdir, *args, snakefile="Snakefile", timeout=900):
    cmd = [str(SNAKEMAKE), "-s", str(snakefile), "-d", str(workdir), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=workdir)


TABLES = ["encounters", "fates", "wells", "conditions", "comparisons", "dose_response",
          "plate_qc", "qc_frame_counts", "qc_track_lengths", "missing_sites"]
FIGS = ["outcome_fractions", "time_to_kill", "dose_response", "plate_heatmap",
        "encounter_durations", "qc"]


def test_tables_have_contract_and_provenance(finished_run):
    from livescreen.tables import read_provenance

    for name in TABLES:
        path = finished_run / "results" / "tables" / f"{name}.parquet"
        prov = read_provenance(path)
        assert {"config_sha256", "samples_sha256", "git_commit", "packages"} <= set(prov), name
    fates = pd.read_parquet(finished_run / "results" / "tables" / "fates.parquet")
    assert {"donor", "effector_type", "condition", "follow_up_min"} <= set(fates.columns)
    cmp = pd.read_parquet(finished_run / "results" / "tables" / "comparisons.parquet")
    # staurosporine has a single well in the tests study: stated, not a crash
    stauro = cmp[(cmp["condition"] == "staurosporine") & (cmp["metric"] == "frac_killed")]
    assert stauro["diff_ci_low"].isna().all() and stauro["note"].str.len().gt(0).all()
    dr = pd.read_parquet(finished_run / "results" / "tables" / "dose_response.parquet")
    assert (~dr["fitted"]).all() and dr["note"].str.startswith("not fitted").all()
    # every site is in the tables
    assert len(pd.read_parquet(finished_run / "results" / "tables" / "missing_sites.parquet")) == 0


def test_figures_and_report(finished_run, finished_report):
    for name in FIGS:
        for ext in ("png", "pdf"):
            assert (finished_run / "results" / "figures" / f"{name}.{ext}").stat().st_size > 1000
    html = finished_report.read_text(errors="replace")
    for name in FIGS:
        assert f"{name}.png" in html


def test_figures_from_archived_tables_alone(finished_run, tmp_path):
    archive = tmp_path / "paper_tables"
    shutil.copytree(finished_run / "results" / "tables", archive)
    res = _smk(tmp_path, "--cores", "1", "--config", f"tables_dir={archive}",
               f"figures_dir={tmp_path / 'figs'}", snakefile=REPO / "workflow" / "figures.smk")
    assert res.returncode == 0, res.stderr[-4000:]
    assert sorted(p.stem for p in (tmp_path / "figs").glob("*.png")) == sorted(FIGS)


def _chromium() -> str:
    """Debian's chromium; installed with apt-get where the tests run as root (CI)."""
    found = report_screenshot.find_chromium()
    if found is None and os.geteuid() == 0 and shutil.which("apt-get") \
            and not os.environ.get("LIVESCREEN_NO_APT"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"]):
            subprocess.run(["timeout", "-s", "KILL", "900", *cmd], capture_output=True, env=env)
        found = report_screenshot.find_chromium()
    if found is None:
        pytest.skip("chromium is not installed (and could not be installed with apt-get)")
    return found


def _palette_pixels(png: Path) -> list[int]:
    """Pixels close to the figures' first two palette colours (seaborn colorblind)."""
    from PIL import Image

    rgb = np.asarray(Image.open(png).convert("RGB")).astype(int)
    return [int((np.abs(rgb - np.array(c)).sum(-1) < 40).sum())
            for c in ((1, 115, 178), (222, 143, 5))]


def test_report_opens_in_headless_chromium_and_shows_a_figure(finished_report, tmp_path):
    chromium = _chromium()
    front, shot = tmp_path / "front.png", tmp_path / "figure.png"
    report_screenshot.screenshot(finished_report.as_uri(), front, chromium)
    key = report_screenshot.screenshot_figure(finished_report, shot, "outcome_fractions.png",
                                              chromium)
    assert key.endswith("results/figures/outcome_fractions.png")
    # the front page (workflow description) holds no plot; once the figure is
    # shown the report displays its per-well points in the palette's colours
    assert _palette_pixels(front) == [0, 0]
    assert sum(_palette_pixels(shot)) >= 10, _palette_pixels(shot)
