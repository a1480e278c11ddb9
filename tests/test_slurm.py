"""The tests-sized study on a REAL single-node SLURM cluster (issue 7).

``tests/slurm/local_slurm.sh`` installs Debian's slurm-wlm + munge (apt) and
starts slurmctld/slurmd on this machine (root only; no systemd needed). The
study then runs through snakemake-executor-plugin-slurm with a copy of
``profiles/slurm`` edited the way docs/cluster.md tells a user to (partition,
account, GPU partition for segmentation). Checked:

1. a corrupt movie at one site fails that site's SLURM jobs, the error names
   the site, the other sites finish (--keep-going);
2. after restoring the movie, a dry run lists only that site's jobs (and the
   all-site summaries), and the rerun completes;
3. every Parquet table of the SLURM run equals the local run's (DataFrame
   contents, rows sorted; not bytes: provenance metadata may differ);
4. segmentation jobs ran in the GPU partition, the rest in the CPU partition.

The local run is the session's shared ``finished_run`` (tests/conftest.py; the
whole-workflow tests read the same run), so it costs nothing extra in the full
suite. The simulated movies are copied from it (the corrupt site's then
damaged), so no separate "movies first" run is needed and SLURM runs every
stage from image inspection on.

Everything runs under ``timeout -s KILL`` (a SLURM run whose status queries
fail can hang forever). Runs by default where it can: root on Linux with
apt-get (or SLURM already installed). Skipped otherwise, or when SLURM cannot
be installed (no package index), or with LIVESCREEN_SKIP_SLURM=1.
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

from conftest import REPO, SNAKEMAKE, load_yaml, make_study, save_yaml

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]

SCRIPT = REPO / "tests" / "slurm" / "local_slurm.sh"
BAD_SITE = ("T1", "B03", "1")
CPU_PARTITION, GPU_PARTITION = "cpu", "gpu"
# Hard limits (seconds, SIGKILL) per step; generous against the ~2-4 min they take.
START_LIMIT_S = 300        # includes apt-get install on a fresh machine
RUN_LIMIT_S = int(os.environ.get("LIVESCREEN_SLURM_RUN_LIMIT", "600"))
EXIT_CANNOT_INSTALL = 3    # local_slurm.sh: apt-get missing or failed


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


def _slurm_script(action: str, limit: int) -> subprocess.CompletedProcess:
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
    before = _slurm_script("status", 60).stdout
    already = "slurmctld: running" in before and "slurmd: running" in before
    t0 = time.monotonic()
    res = _slurm_script("start", START_LIMIT_S)
    if res.returncode == EXIT_CANNOT_INSTALL:
        pytest.skip(f"SLURM could not be installed: {res.stderr.strip()[-500:]}")
    assert res.returncode == 0, (f"local SLURM cluster did not start (rc {res.returncode}, "
                                 f"limit {START_LIMIT_S} s):\n{res.stderr[-4000:]}")
    print(f"local SLURM cluster up in {time.monotonic() - t0:.1f} s")  # noqa: T201
    yield
    if not already:
        _slurm_script("stop", 120)


def _snakemake(workdir: Path, *args: str, limit: int = RUN_LIMIT_S) -> subprocess.CompletedProcess:
    cmd = ["timeout", "-s", "KILL", str(limit), str(SNAKEMAKE), "-s", str(REPO / "Snakefile"),
           "-d", str(workdir), "--configfile", "config.yaml", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)
    assert res.returncode not in (-9, 137), (
        f"snakemake killed after {limit} s: {' '.join(args)}\n{(res.stdout + res.stderr)[-4000:]}")
    return res


def _user_profile(dest: Path) -> Path:
    """profiles/slurm as a user of this cluster edits it (docs/cluster.md)."""
    prof = load_yaml(REPO / "profiles" / "slurm" / "config.yaml")
    assert prof["executor"] == "slurm"
    prof["default-resources"]["slurm_partition"] = CPU_PARTITION
    # This test cluster has no accounting database: the account line deleted
    # (the plugin's guess finds none and submits without -A), status by squeue.
    prof["default-resources"].pop("slurm_account", None)
    prof["slurm-status-command"] = "squeue"
    # Small cluster, small jobs: poll often instead of the plugin's 40 s first wait.
    prof["slurm-init-seconds-before-status-checks"] = 2
    prof["seconds-between-status-checks"] = 2
    prof["latency-wait"] = 5
    # The corrupt movie fails every attempt: no retry (saves ~1 min of doomed jobs).
    prof["retries"] = 0
    # The GPU block of the profile, switched on (the test node has no real GPU,
    # so no `gpu: 1`; segment.use_gpu falls back to the CPU).
    seg = prof["set-resources"].setdefault("segment_population", {})
    seg["slurm_partition"] = GPU_PARTITION
    dest.mkdir(parents=True, exist_ok=True)
    save_yaml(dest / "config.yaml", prof)
    return dest


def _canonical(df: pd.DataFrame) -> pd.DataFrame:
    """Rows in a canonical order (sorted by every column, as text), fresh index."""
    if df.empty:
        return df.reset_index(drop=True)
    flat = df.reset_index(drop=True)
    order = flat.astype(str).sort_values(list(flat.columns), kind="stable").index
    return flat.loc[order].reset_index(drop=True)


def _tables(workdir: Path) -> dict[str, pd.DataFrame]:
    """Every Parquet table of a finished run (results/), keyed by relative path."""
    return {str(p.relative_to(workdir)): pd.read_parquet(p)
            for p in sorted((workdir / "results").rglob("*.parquet"))}


def _finished_sites(workdir: Path) -> set[tuple[str, str, str]]:
    """Sites whose event scoring (the last per-site job) has finished."""
    sheet = pd.read_csv(workdir / "samples.tsv", sep="\t", dtype=str)
    return {site for site in _site_dirs(sheet)
            if (workdir / "results" / "sites" / Path(*site) / "events" / "fates.parquet").is_file()}


def _site_dirs(sheet: pd.DataFrame) -> list[tuple[str, str, str]]:
    return [(r.plate, r.well, str(r.field)) for r in sheet.itertuples()]


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster, finished_run, tmp_path_factory) -> dict:
    """A SLURM run with one corrupt movie, then a fix, a dry run and a rerun.

    Returns a dict: workdir, failed (the run with the corrupt movie),
    finished_after_failure (sites done after it), dry (dry run after the fix),
    rerun, seconds (all SLURM runs together).
    """
    t0 = time.monotonic()
    workdir = make_study(tmp_path_factory.mktemp("slurm"))
    profile = _user_profile(workdir / "profile")
    wp = ["--workflow-profile", str(profile)]

    # 1. the movies (and truth) from the local run, the corrupt site's with garbage
    # in the middle: its header still reads (the workflow loads), its pixels do not
    # (the site's jobs fail on SLURM).
    # every site's movie (and truth) comes from the local run: simulating is not
    # what this test is about, and each SLURM job costs a submission and a start-up
    shutil.copytree(finished_run / "resources" / "simulated",
                    workdir / "resources" / "simulated")
    rel = Path("resources", "simulated", *BAD_SITE)
    bad = workdir / rel / "image.ome.tif"
    good_bytes = bad.read_bytes()
    with bad.open("r+b") as fh:
        fh.seek(len(good_bytes) // 3)
        fh.write(b"\xff" * 4096)
    failed = _snakemake(workdir, *wp)
    finished_after_failure = _finished_sites(workdir)

    # 2. fix the input; only what is missing is rerun
    bad.write_bytes(good_bytes)
    dry = _snakemake(workdir, *wp, "-n", limit=120)
    rerun = _snakemake(workdir, *wp)
    seconds = time.monotonic() - t0
    print(f"SLURM runs (failing run, dry run, rerun): {seconds:.0f} s")  # noqa: T201
    return {"workdir": workdir, "failed": failed, "finished_after_failure": finished_after_failure,
            "dry": dry, "rerun": rerun, "seconds": seconds}


def test_failing_site_is_named_and_other_sites_finish(slurm_run):
    failed = slurm_run["failed"]
    log = failed.stdout + failed.stderr
    assert failed.returncode != 0, log[-4000:]
    plate, well, field = BAD_SITE
    assert f"{plate}/{well}/{field}" in log, log[-6000:]
    assert f"well={well}" in log
    assert "SLURM" in log and ("FAILED" in log or "Error in" in log), log[-6000:]
    # --keep-going: every other site went all the way to event scoring
    sheet = pd.read_csv(slurm_run["workdir"] / "samples.tsv", sep="\t", dtype=str)
    assert slurm_run["finished_after_failure"] == set(_site_dirs(sheet)) - {BAD_SITE}


def test_rerun_after_fix_runs_only_what_is_missing(slurm_run):
    dry, rerun = slurm_run["dry"], slurm_run["rerun"]
    log = dry.stdout + dry.stderr
    assert dry.returncode == 0, log[-4000:]
    plate, well, field = BAD_SITE
    jobs = [ln.strip() for ln in log.splitlines() if ln.strip().startswith("wildcards:")]
    per_site = [ln for ln in jobs if "plate=" in ln]
    assert per_site, "the dry run lists no per-site job"
    assert all(f"well={well}" in ln for ln in per_site), per_site
    assert "rule simulate_site" not in log  # the movie was not remade
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-6000:]
    sheet = pd.read_csv(slurm_run["workdir"] / "samples.tsv", sep="\t", dtype=str)
    assert _finished_sites(slurm_run["workdir"]) == set(_site_dirs(sheet))


def test_slurm_tables_equal_local_tables(slurm_run, finished_run):
    assert slurm_run["rerun"].returncode == 0
    local, remote = _tables(finished_run), _tables(slurm_run["workdir"])
    assert any(k.startswith("results/tables/") for k in local)
    assert sorted(remote) == sorted(local)
    for name, expected in local.items():
        got = remote[name]
        assert sorted(got.columns) == sorted(expected.columns), name
        pd.testing.assert_frame_equal(_canonical(got[list(expected.columns)]),
                                      _canonical(expected), check_exact=False, rtol=1e-6,
                                      obj=name)


def test_segmentation_went_to_the_gpu_partition(slurm_run):
    assert slurm_run["rerun"].returncode == 0
    # finished jobs stay visible to squeue for MinJobAge (600 s); %k = comment
    # (the plugin writes rule_<name>_wildcards_...), %P = partition
    out = subprocess.run(["timeout", "-s", "KILL", "60", "squeue", "-h", "-t", "all",
                          "-o", "%k|%P"], capture_output=True, text=True, check=True).stdout
    jobs = [ln.split("|") for ln in out.splitlines() if ln.startswith(("rule_", "group_"))]
    seg = [p for c, p in jobs if c.startswith("rule_segment_population")]
    other = [p for c, p in jobs if not c.startswith("rule_segment_population")]
    assert seg and set(seg) == {GPU_PARTITION}, jobs
    assert other and set(other) == {CPU_PARTITION}, jobs
