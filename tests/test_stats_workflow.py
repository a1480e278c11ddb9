"""Aggregate -> statistics -> figures -> report as a Snakemake run on simulator
truth written as per-site event tables (the perfect-scorer case), and the
stand-alone figures entry point on archived tables."""

from __future__ import annotations

import shutil
import subprocess

import pandas as pd
import pytest

from conftest import REPO, SNAKEMAKE, load_yaml, save_yaml

pytestmark = pytest.mark.workflow

SNAKEFILE = f"""
configfile: "config.yaml"
include: "{REPO}/workflow/rules/common.smk"
include: "{REPO}/workflow/rules/study.smk"
include: "{REPO}/workflow/rules/aggregate.smk"
include: "{REPO}/workflow/rules/stats.smk"
include: "{REPO}/workflow/rules/figures.smk"
rule all:
    input: rules.stats_tables.output, rules.figures.input
    default_target: True
"""


def _write_events(workdir, cfg, sheet):
    from livescreen.simulate import site_seed
    from livescreen.stats import effectors_from_encounters
    from livescreen.stats.simulated import truth_site

    for row in sheet.to_dict("records"):
        seed = site_seed(cfg["simulate"]["seed"], row["plate"], row["well"], row["field"])
        t = truth_site(cfg["simulate"], cfg["imaging"], row, seed)
        site = workdir / "results" / "sites" / row["plate"] / row["well"] / row["field"]
        (site / "events").mkdir(parents=True)
        (site / "track").mkdir(parents=True)
        t["encounters"].to_parquet(site / "events" / "encounters.parquet")
        t["fates"].to_parquet(site / "events" / "fates.parquet")
        tracks = t["tracks"]
        eff = effectors_from_encounters(t["encounters"], tracks[tracks["population"] == "effector"],
                                        cfg["imaging"]["frame_interval_min"])
        eff.to_parquet(site / "events" / "effectors.parquet")
        for pop in ("target", "effector"):
            tracks[tracks["population"] == pop].to_parquet(site / "track" / f"{pop}_tracks.parquet")


def _smk(workdir, *args, snakefile="Snakefile", timeout=900):
    cmd = [str(SNAKEMAKE), "-s", str(snakefile), "-d", str(workdir), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=workdir)


@pytest.fixture(scope="module")
def stats_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("stats_run")
    shutil.copy(REPO / "tests" / "config" / "samples.tsv", workdir / "samples.tsv")
    cfg = load_yaml(REPO / "tests" / "config" / "config.yaml")
    cfg["samples"] = "samples.tsv"
    save_yaml(workdir / "config.yaml", cfg)
    (workdir / "Snakefile").write_text(SNAKEFILE)
    sheet = pd.read_csv(workdir / "samples.tsv", sep="\t", dtype=str)
    _write_events(workdir, cfg, sheet)
    res = _smk(workdir, "--cores", "2")
    assert res.returncode == 0, res.stderr[-6000:]
    res = _smk(workdir, "--report", "report.html")
    assert res.returncode == 0, res.stderr[-6000:]
    return workdir


TABLES = ["encounters", "fates", "wells", "conditions", "comparisons", "dose_response",
          "plate_qc", "qc_frame_counts", "qc_track_lengths"]
FIGS = ["outcome_fractions", "time_to_kill", "dose_response", "plate_heatmap",
        "encounter_durations", "qc"]


def test_tables_have_contract_and_provenance(stats_run):
    from livescreen.tables import read_provenance

    for name in TABLES:
        path = stats_run / "results" / "tables" / f"{name}.parquet"
        prov = read_provenance(path)
        assert {"config_sha256", "samples_sha256", "git_commit", "packages"} <= set(prov), name
    fates = pd.read_parquet(stats_run / "results" / "tables" / "fates.parquet")
    assert {"donor", "effector_type", "condition", "follow_up_min"} <= set(fates.columns)
    cmp = pd.read_parquet(stats_run / "results" / "tables" / "comparisons.parquet")
    # staurosporine has a single well in the tests study: stated, not a crash
    stauro = cmp[(cmp["condition"] == "staurosporine") & (cmp["metric"] == "frac_killed")]
    assert stauro["diff_ci_low"].isna().all() and stauro["note"].str.len().gt(0).all()
    dr = pd.read_parquet(stats_run / "results" / "tables" / "dose_response.parquet")
    assert (~dr["fitted"]).all() and dr["note"].str.startswith("not fitted").all()


def test_figures_and_report(stats_run):
    for name in FIGS:
        for ext in ("png", "pdf"):
            assert (stats_run / "results" / "figures" / f"{name}.{ext}").stat().st_size > 1000
    html = (stats_run / "report.html").read_text(errors="replace")
    for name in FIGS:
        assert f"{name}.png" in html


def test_figures_from_archived_tables_alone(stats_run, tmp_path):
    archive = tmp_path / "paper_tables"
    shutil.copytree(stats_run / "results" / "tables", archive)
    res = _smk(tmp_path, "--cores", "1", "--config", f"tables_dir={archive}",
               f"figures_dir={tmp_path / 'figs'}", snakefile=REPO / "workflow" / "figures.smk")
    assert res.returncode == 0, res.stderr[-4000:]
    assert sorted(p.stem for p in (tmp_path / "figs").glob("*.png")) == sorted(FIGS)


def test_report_opens_in_headless_chromium(stats_run, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium not installed")
    shot = tmp_path / "report.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
                    "--window-size=1400,2000", (stats_run / "report.html").as_uri()],
                   capture_output=True, timeout=120)
    from PIL import Image

    img = Image.open(shot).convert("L")
    assert img.size == (1400, 2000)
    assert len(set(img.getdata())) > 20   # not a blank page
