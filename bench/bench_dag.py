"""Dry-run time and job counts of the DAG for a big simulated plate (issue 7).

Writes a study of one 384-well plate x 4 fields (1,536 sites; conditions as in
the tests-sized study, repeated) into a temporary folder, with
``simulate.enabled: true`` so the movies are rule outputs that need not exist,
and times ``snakemake -n`` on it (the whole workflow: load, validation, DAG).
Prints the wall time, the jobs per rule, the jobs per site, and (with the
SLURM profile's groups) how many SLURM submissions that makes. Then, unless
``--no-rerun``, times a no-op rerun (every output present, so the dry run has
nothing to do; the movies are tiny real OME-TIFFs whose headers the workflow
reads at load time, as for a real plate) for 96, 384 and 1,536 sites. Wall and
CPU seconds go to bench/results/dag.json (CPU time is the fairer number on a
busy machine).

    .venv/bin/python bench/bench_dag.py                 # 384 wells x 4 fields
    .venv/bin/python bench/bench_dag.py --wells 96 --fields 2 --keep /tmp/plate96

Target (issue 7): <= 30 s for 1,536 sites.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shutil
import string
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def plate_sheet(n_wells: int, n_fields: int) -> pd.DataFrame:
    """A sample sheet of one plate, the tests study's conditions cycled over wells."""
    base = pd.read_csv(REPO / "tests" / "config" / "samples.tsv", sep="\t", dtype=str)
    rows_, cols = (16, 24) if n_wells > 96 else (8, 12)
    wells = [f"{string.ascii_uppercase[r]}{c + 1:02d}" for r in range(rows_) for c in range(cols)]
    wells = wells[:n_wells]
    records = []
    for i, well in enumerate(wells):
        cond = base.iloc[i % len(base)].to_dict()
        for field in range(1, n_fields + 1):
            rec = dict(cond, plate="P1", well=well, field=str(field))
            rec["image"] = f"resources/simulated/P1/{well}/{field}/image.ome.tif"
            records.append(rec)
    return pd.DataFrame.from_records(records, columns=list(base.columns))


def write_study(workdir: Path, n_wells: int, n_fields: int, placeholders: bool = False) -> int:
    """Write config.yaml + samples.tsv of a plate into ``workdir``; return the sites.

    By default the movies are simulated (rule outputs that need not exist).
    With ``placeholders``, the study is a real one (``simulate.enabled: false``)
    whose movies are tiny valid OME-TIFFs written under ``raw/``: the DAG of a
    real plate, and the workflow reads every movie's header when it loads.
    """
    sheet = plate_sheet(n_wells, n_fields)
    cfg = yaml.safe_load((REPO / "tests" / "config" / "config.yaml").read_text())
    if placeholders:
        sheet["image"] = [f"raw/{p}/{w}/{f}.ome.tif"
                          for p, w, f in zip(sheet["plate"], sheet["well"], sheet["field"],
                                             strict=True)]
        write_placeholder_movies(workdir, sheet["image"])
        cfg["simulate"]["enabled"] = False
    sheet.to_csv(workdir / "samples.tsv", sep="\t", index=False)
    cfg["samples"] = "samples.tsv"
    for pop in (cfg.get("segment") or {}).get("populations", {}).values():
        if str(pop.get("model", "")).endswith(".pth"):  # committed weights: absolute path
            pop["model"] = str(REPO / pop["model"])
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return len(sheet)


def write_placeholder_movies(workdir: Path, images) -> None:
    """A tiny valid (T, C, Y, X) OME-TIFF at every path (placeholders for a dry run)."""
    import numpy as np
    import tifffile

    movie = np.zeros((2, 3, 8, 8), dtype=np.uint16)
    for rel in images:
        path = workdir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(path, movie, ome=True, metadata={"axes": "TCYX"})


def placeholder_plate(wells: int, fields: int) -> dict:
    """Dry runs of a real (not simulated) plate whose movies are placeholders.

    The first dry run reads every movie's header; the second takes them from
    the workflow's header cache (as every later command of a study does).
    """
    workdir = Path(tempfile.mkdtemp(prefix="bench_plate_"))
    try:
        n_sites = write_study(workdir, wells, fields, placeholders=True)
        first, first_cpu, log = dry_run(workdir, "--quiet", "rules")
        jobs = sum(job_stats(log).values())
        cached, cached_cpu, _ = dry_run(workdir, "--quiet", "rules")
        return {"sites": n_sites, "jobs": jobs, "dry_run_s": round(first, 2),
                "dry_run_cpu_s": round(first_cpu, 2), "dry_run_cached_headers_s": round(cached, 2),
                "dry_run_cached_headers_cpu_s": round(cached_cpu, 2)}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def dry_run(workdir: Path, *extra: str) -> tuple[float, float, str]:
    """Time ``snakemake -n`` in ``workdir``: (wall s, CPU s of the process, log)."""
    cmd = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "-d", str(workdir),
           "--configfile", "config.yaml", "-n", *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if res.returncode != 0:
        sys.exit(f"dry run failed:\n{(res.stdout + res.stderr)[-4000:]}")
    return seconds, cpu, res.stdout + res.stderr


def planned_outputs(log: str) -> list[str]:
    """Output files of every job of a (non-quiet) dry run's log."""
    files: list[str] = []
    for line in log.splitlines():
        line = line.strip()
        if line.startswith("output: "):
            files += [f.strip() for f in line[len("output: "):].split(",") if f.strip()]
    return files


def make_outputs_exist(workdir: Path, files: list[str]) -> None:
    """Create every planned output (same mtime) so that a rerun has nothing to do.

    Movies get a tiny valid OME-TIFF (the workflow reads every existing movie's
    header at load time, as for a real plate); other files are empty.
    """
    stamp = time.time() - 60
    write_placeholder_movies(workdir, [f for f in files if f.endswith("image.ome.tif")])
    for rel in files:
        if not rel.endswith("image.ome.tif"):
            (workdir / rel).parent.mkdir(parents=True, exist_ok=True)
            (workdir / rel).touch()
    for rel in files:
        os.utime(workdir / rel, (stamp, stamp))
    for name in ("samples.tsv", "config.yaml"):
        os.utime(workdir / name, (stamp - 60, stamp - 60))


def noop_rerun(wells: int, fields: int) -> dict:
    """Dry runs of an empty study (job summary; every job listed), then of the same
    study with every output present (no-op rerun)."""
    workdir = Path(tempfile.mkdtemp(prefix="bench_noop_"))
    try:
        n_sites = write_study(workdir, wells, fields)
        # the plan and its per-rule summary (what a user checks before a big run) ...
        summary, summary_cpu, _ = dry_run(workdir, "--quiet", "rules")
        # ... and the same with Snakemake's listing of every job (needed for the outputs)
        first, first_cpu, log = dry_run(workdir)
        files = planned_outputs(log)
        make_outputs_exist(workdir, files)
        seconds, cpu, log = dry_run(workdir)  # reads every movie's header
        noop = "Nothing to be done" in log
        if not noop:  # still timed; the jobs it wants are reported
            print(f"  note: rerun of the {n_sites}-site study is not a no-op: "
                  f"{job_stats(log).most_common()}")
        cached, cached_cpu, _ = dry_run(workdir)  # headers from the workflow's cache
        return {"sites": n_sites, "dry_run_summary_s": round(summary, 2),
                "dry_run_summary_cpu_s": round(summary_cpu, 2), "dry_run_s": round(first, 2),
                "dry_run_cpu_s": round(first_cpu, 2), "noop_rerun_s": round(seconds, 2),
                "noop_rerun_cpu_s": round(cpu, 2), "noop_rerun_cached_headers_s": round(cached, 2),
                "noop_rerun_cached_headers_cpu_s": round(cached_cpu, 2),
                "outputs": len(files), "noop": noop}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def job_stats(log: str) -> Counter:
    """Jobs per rule from Snakemake's 'Job stats' table."""
    counts: Counter = Counter()
    table = log.split("Job stats:", 1)[-1]
    for line in table.splitlines():
        m = re.match(r"^(\w+)\s+(\d+)\s*$", line.strip())
        if m and m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


def snakemake_version() -> str:
    res = subprocess.run([str(SNAKEMAKE), "--version"], capture_output=True, text=True)
    return res.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wells", type=int, default=384)
    ap.add_argument("--fields", type=int, default=4)
    ap.add_argument("--keep", type=Path, help="write the study here and keep it")
    ap.add_argument("--no-rerun", action="store_true",
                    help="skip the no-op rerun timings (96 / 384 / 1,536 sites)")
    ap.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "dag_plate.json",
                    help="write the results here (default bench/results/dag_plate.json; "
                         "bench/run_all.py writes dag.json)")
    args = ap.parse_args()
    result: dict = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
                    "machine": {"cpus": os.cpu_count(), "loadavg_before": os.getloadavg()[0],
                                "python": platform.python_version(),
                                "snakemake": snakemake_version()}}

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="bench_dag_"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        n_sites = write_study(workdir, args.wells, args.fields)
        seconds, cpu, log = dry_run(workdir, "--quiet", "rules")
        counts = job_stats(log)
        total = sum(counts.values())
        print(f"sites: {n_sites} ({args.wells} wells x {args.fields} fields)")
        print(f"dry run (load + validate + DAG, {total} jobs): {seconds:.1f} s wall, "
              f"{cpu:.1f} s CPU (target <= 30 s for 1,536 sites)")
        result["plate"] = {"sites": n_sites, "wells": args.wells, "fields": args.fields,
                           "jobs": total, "dry_run_s": round(seconds, 2),
                           "dry_run_cpu_s": round(cpu, 2), "jobs_per_rule": dict(counts)}
        print("jobs per rule:")
        for rule, n in sorted(counts.items()):
            print(f"  {rule:28s} {n:6d}  ({n / n_sites:.2f} per site)")
        # SLURM submissions with profiles/slurm: groups become one job per piece
        prof = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
        groups = prof.get("groups", {})
        components = prof.get("group-components", {})
        local = {"study_sheet", "fetch_cellpose_model", "figures", "all"}
        ungrouped = sum(n for r, n in counts.items() if r not in groups and r not in local)
        grouped_rules = Counter()
        for r, g in groups.items():
            grouped_rules[g] += 1 if r in counts else 0
        # per-site groups: one job per site; all-site groups: pieces / components
        per_group = {}
        for g in set(groups.values()):
            rules = [r for r, gg in groups.items() if gg == g and r in counts]
            if not rules:
                continue
            pieces = max(counts[r] for r in rules)
            if g.startswith("site_"):
                pieces = n_sites
            per_group[g] = -(-pieces // int(components.get(g, 1)))
        sbatch = ungrouped + sum(per_group.values())
        print(f"SLURM jobs with profiles/slurm (estimate): {sbatch} "
              f"({sbatch / n_sites:.2f} per site); groups: {per_group}")
        result["slurm_jobs_estimate"] = {"total": sbatch, "per_site": round(sbatch / n_sites, 2),
                                         "groups": per_group}
        if not args.no_rerun:
            result["noop_rerun"] = []
            print("no-op rerun (every output present; dry run says 'Nothing to be done'):")
            for wells, fields in ((96, 1), (96, 4), (384, 4)):
                r = noop_rerun(wells, fields)
                result["noop_rerun"].append(r)
                print(f"  {r['sites']:5d} sites: first dry run {r['dry_run_s']:6.1f} s, "
                      f"no-op rerun {r['noop_rerun_s']:6.1f} s wall "
                      f"({r['noop_rerun_cpu_s']:.1f} s CPU), again with cached movie headers "
                      f"{r['noop_rerun_cached_headers_s']:6.1f} s "
                      f"({r['noop_rerun_cached_headers_cpu_s']:.1f} s CPU)")
        result["machine"]["loadavg_after"] = os.getloadavg()[0]
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
        print(f"results: {args.json}")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
