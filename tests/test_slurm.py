"""The tests-sized study on a REAL single-node SLURM cluster (issue 7).

``tests/slurm/local_slurm.sh`` installs Debian's slurm-wlm + munge (apt) and
starts slurmctld/slurmd on this machine (root only; no systemd needed). The
study then runs through snakemake-executor-plugin-slurm with a copy of
``profiles/slurm`` edited the way docs/cluster.md tells a user to (partition,
account, GPU partition for segmentation). Checked:

1. a corrupt movie at one site fails that site's SLURM job, the error names the
   site, the other sites finish (--keep-going);
2. after restoring the movie, a dry run lists only that site's jobs (and the
   all-site summaries), and the rerun completes;
3. every Parquet table of the SLURM run equals the local run's (pandas, not
   bytes: provenance metadata may differ);
4. segmentation jobs ran in the GPU partition, the rest in the CPU partition.

Everything runs under ``timeout -s KILL`` (a SLURM run whose status queries
fail can hang forever). Skipped where it cannot run: not root, not Linux, no
apt-get and no SLURM, or LIVESCREEN_SKIP_SLURM=1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO, SNAKEMAKE, load_yaml, save_yaml

pytestmark = [pytest.mark.slurm, pytest.mark.workflow, pytest.mark.slow]

SCRIPT = REPO / "tests" / "slurm" / "local_slurm.sh"
BAD_SITE = ("T1", "B03", "1")
CPU_PARTITION, GPU_PARTITION = "cpu", "gpu"
RUN_LIMIT_S = int(os.environ.get("LIVESCREEN_SLURM_RUN_LIMIT", "900"))


def _skip_reason() -> str | None:
    if os.environ.get("LIVESCREEN_SKIP_SLURM") == "1":
        return "LIVESCREEN_SKIP_SLURM=1"
    if not sys.platform.startswith("linux"):
        return "a local SLURM cluster needs Linux"
    if os.geteuid() != 0:
        return "starting a local SLURM cluster needs root (run as root, e.g. in CI)"
    if not (shutil.which("apt-get") or shutil.which("slurmctld")):
        return "SLURM is not installed and there is no apt-get to install it (Debian/Ubuntu)"
    if not shutil.which("timeout"):
        return "coreutils 'timeout' is missing"
    return None


def _slurm_script(action: str, limit: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "SLURM_CPUS": "4", "SLURM_PARTITION": CPU_PARTITION,
           "SLURM_GPU_PARTITION": GPU_PARTITION}
    return subprocess.run(["timeout", "-s", "KILL", str(limit), "bash", str(SCRIPT), action],
                          capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def slurm_cluster():
    """Start the local cluster (install on first use); stop it afterwards if we started it."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    before = _slurm_script("status", 30).stdout
    already = "slurmctld: running" in before and "slurmd: running" in before
    t0 = time.monotonic()
    res = _slurm_script("start")
    assert res.returncode == 0, f"local SLURM cluster did not start:\n{res.stderr[-4000:]}"
    print(f"local SLURM cluster up in {time.monotonic() - t0:.1f} s")  # noqa: T201
    yield
    if not already:
        _slurm_script("stop", 120)


def _study(workdir: Path) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "tests" / "config" / "samples.tsv", workdir / "samples.tsv")
    cfg = load_yaml(REPO / "tests" / "config" / "config.yaml")
    cfg["samples"] = "samples.tsv"
    save_yaml(workdir / "config.yaml", cfg)
    return workdir


def _snakemake(workdir: Path, *args: str, limit: int = RUN_LIMIT_S) -> subprocess.CompletedProcess:
    cmd = ["timeout", "-s", "KILL", str(limit), str(SNAKEMAKE), "-s", str(REPO / "Snakefile"),
           "-d", str(workdir), "--configfile", "config.yaml", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)
    killed = res.returncode in (-9, 137)
    assert not killed, f"snakemake killed after {limit} s:\n{res.stderr[-4000:]}"
    return res


def _user_profile(dest: Path) -> Path:
    """profiles/slurm as a user of this cluster edits it (docs/cluster.md)."""
    prof = load_yaml(REPO / "profiles" / "slurm" / "config.yaml")
    assert prof["executor"] == "slurm"
    prof["default-resources"]["slurm_partition"] = CPU_PARTITION
    # This test cluster has no accounting database: no account, status by squeue.
    prof["default-resources"].pop("slurm_account", None)
    prof["slurm-no-account"] = True
    prof["slurm-status-command"] = "squeue"
    # Small cluster, small jobs: poll often instead of the plugin's 40 s first wait.
    prof["slurm-init-seconds-before-status-checks"] = 2
    prof["seconds-between-status-checks"] = 2
    prof["latency-wait"] = 5
    # The GPU block of the profile, switched on (the test node has no real GPU,
    # so no `gpu: 1`; segment.use_gpu falls back to the CPU).
    seg = prof["set-resources"].setdefault("segment_population", {})
    seg["slurm_partition"] = GPU_PARTITION
    dest.mkdir(parents=True, exist_ok=True)
    save_yaml(dest / "config.yaml", prof)
    return dest


def _tables(workdir: Path) -> dict[str, pd.DataFrame]:
    """Every Parquet table of a finished run (results/), keyed by relative path."""
    return {str(p.relative_to(workdir)): pd.read_parquet(p)
            for p in sorted((workdir / "results").rglob("*.parquet"))}


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    workdir = _study(tmp_path_factory.mktemp("local"))
    res = _snakemake(workdir, "--cores", "2")
    assert res.returncode == 0, res.stderr[-6000:]
    return workdir


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster, tmp_path_factory):
    """A SLURM run with one corrupt movie, then a fix and a rerun.

    Returns (workdir, failed run, dry run after the fix, rerun, seconds).
    """
    t0 = time.monotonic()
    workdir = _study(tmp_path_factory.mktemp("slurm"))
    profile = _user_profile(workdir / "profile")
    wp = ["--workflow-profile", str(profile)]
    sheet = pd.read_csv(workdir / "samples.tsv", sep="\t", dtype=str)

    # 1. movies only (simulate_site jobs on SLURM)
    res = _snakemake(workdir, *wp, *sheet["image"])
    assert res.returncode == 0, res.stderr[-6000:]

    # 2. garbage in the middle of one movie: its header still reads (the
    # workflow loads), its pixels do not (the site's jobs fail on SLURM).
    bad = workdir / "resources" / "simulated" / Path(*BAD_SITE) / "image.ome.tif"
    good_bytes = bad.read_bytes()
    with bad.open("r+b") as fh:
        fh.seek(len(good_bytes) // 3)
        fh.write(b"\xff" * 4096)
    failed = _snakemake(workdir, *wp)

    # 3. fix the input; only what is missing is rerun
    bad.write_bytes(good_bytes)
    os.utime(bad)
    dry = _snakemake(workdir, *wp, "-n", limit=300)
    rerun = _snakemake(workdir, *wp)
    return workdir, failed, dry, rerun, time.monotonic() - t0


def _site_dirs(sheet: pd.DataFrame) -> list[tuple[str, str, str]]:
    return [(r.plate, r.well, str(r.field)) for r in sheet.itertuples()]


def test_failing_site_is_named_and_other_sites_finish(slurm_run):
    workdir, failed, *_ = slurm_run
    log = failed.stdout + failed.stderr
    assert failed.returncode != 0, log[-4000:]
    plate, well, field = BAD_SITE
    assert f"{plate}/{well}/{field}" in log, log[-6000:]
    assert f"well={well}" in log
    assert "SLURM" in log and ("FAILED" in log or "Error in" in log)
    sheet = pd.read_csv(workdir / "samples.tsv", sep="\t", dtype=str)
    for site in _site_dirs(sheet):
        events = workdir / "results" / "sites" / Path(*site) / "events" / "fates.parquet"
        if site == BAD_SITE:
            assert not events.exists()
        else:  # the other sites went all the way to event scoring
            assert events.is_file(), f"{'/'.join(site)} did not finish under --keep-going"


def test_rerun_after_fix_runs_only_what_is_missing(slurm_run):
    workdir, _, dry, rerun, seconds = slurm_run
    assert dry.returncode == 0, dry.stderr[-4000:]
    plate, well, field = BAD_SITE
    jobs = [ln.strip() for ln in (dry.stdout + dry.stderr).splitlines()
            if ln.strip().startswith("wildcards:")]
    per_site = [ln for ln in jobs if "plate=" in ln]
    assert per_site, "the dry run lists no per-site job"
    assert all(f"well={well}" in ln for ln in per_site), per_site
    assert "rule simulate_site" not in dry.stdout + dry.stderr  # the movie was not remade
    assert rerun.returncode == 0, rerun.stderr[-6000:]
    print(f"SLURM runs (movies, failing run, dry run, rerun): {seconds:.0f} s")  # noqa: T201


def test_slurm_tables_equal_local_tables(slurm_run, local_run):
    workdir = slurm_run[0]
    assert slurm_run[3].returncode == 0
    local, remote = _tables(local_run), _tables(workdir)
    assert any(k.startswith("results/tables/") for k in local)
    assert sorted(remote) == sorted(local)
    for name, expected in local.items():
        pd.testing.assert_frame_equal(remote[name], expected, check_exact=False, rtol=1e-9,
                                      obj=name)


def test_segmentation_went_to_the_gpu_partition(slurm_run):
    assert slurm_run[3].returncode == 0
    # finished jobs stay visible to squeue for MinJobAge (600 s); %k = comment
    # (the plugin writes rule_<name>_wildcards_...), %P = partition
    out = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%k|%P"], capture_output=True,
                         text=True, check=True).stdout
    jobs = [ln.split("|") for ln in out.splitlines() if ln.startswith(("rule_", "group_"))]
    seg = [p for c, p in jobs if c.startswith("rule_segment_population")]
    other = [p for c, p in jobs if not c.startswith("rule_segment_population")]
    assert seg and set(seg) == {GPU_PARTITION}, jobs
    assert other and set(other) == {CPU_PARTITION}, jobs
