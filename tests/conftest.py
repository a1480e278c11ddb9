"""Shared fixtures: repository paths, real data, and a Snakemake runner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
REALDATA = Path(os.environ.get("LIVESCREEN_REALDATA", REPO.parent / "shared" / "realdata"))
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def realdata() -> Path:
    """../shared/realdata; tests using it are skipped where it is absent."""
    if not REALDATA.is_dir():
        pytest.skip(f"real data folder {REALDATA} is absent")
    return REALDATA


def run_snakemake(workdir: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the repository's workflow in ``workdir`` and return the finished process."""
    cmd = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=workdir)


@pytest.fixture()
def study_dir(tmp_path: Path) -> Path:
    """A copy of the tests-sized study in a temporary working directory.

    Returns the directory; its ``config.yaml`` points at its own ``samples.tsv``.
    """
    shutil.copy(REPO / "tests" / "config" / "samples.tsv", tmp_path / "samples.tsv")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(tests_config(), sort_keys=False))
    return tmp_path


def tests_config() -> dict:
    """The tests-sized study's config for a run in another directory.

    The sample sheet is expected beside it; model files are made absolute.
    """
    cfg = yaml.safe_load((REPO / "tests" / "config" / "config.yaml").read_text())
    cfg["samples"] = "samples.tsv"
    for pop in (cfg.get("segment") or {}).get("populations", {}).values():
        if str(pop.get("model", "")).endswith(".pth"):
            pop["model"] = str(REPO / pop["model"])
    return cfg


def make_study(workdir: Path) -> Path:
    """Write the tests-sized study (config.yaml + samples.tsv) into ``workdir``."""
    shutil.copy(REPO / "tests" / "config" / "samples.tsv", workdir / "samples.tsv")
    save_yaml(workdir / "config.yaml", tests_config())
    return workdir


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    """The tests-sized study run to completion once per session (the shared run).

    Every whole-workflow test that only reads results uses this one run
    (tests/test_workflow.py, test_stats_workflow.py, test_reliability.py);
    tests that change config or inputs work on dry runs or on their own copy.
    For development, ``LIVESCREEN_FINISHED_RUN=<dir>`` reuses (and first
    brings up to date) a study directory made by an earlier session.
    """
    reuse = os.environ.get("LIVESCREEN_FINISHED_RUN")
    if reuse:
        workdir = Path(reuse)
        if not (workdir / "config.yaml").is_file():
            make_study(workdir)
    else:
        workdir = make_study(tmp_path_factory.mktemp("study"))
    res = run_snakemake(workdir, "--configfile", "config.yaml", "--cores", "2", timeout=1500)
    assert res.returncode == 0, res.stderr[-6000:]
    return workdir


@pytest.fixture(scope="session")
def finished_report(finished_run) -> Path:
    """The Snakemake HTML report of :func:`finished_run`."""
    res = run_snakemake(finished_run, "--configfile", "config.yaml", "--report", "report.html")
    assert res.returncode == 0, res.stderr[-6000:]
    return finished_run / "report.html"


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(Path(path).read_text())


def save_yaml(path: Path, data: dict) -> None:
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False))
