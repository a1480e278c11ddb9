"""Dry-run time and job counts of the DAG for a big simulated plate (issue 7).

Writes a study of one 384-well plate x 4 fields (1,536 sites; conditions as in
the tests-sized study, repeated) into a temporary folder, with
``simulate.enabled: true`` so the movies are rule outputs that need not exist,
and times ``snakemake -n`` on it (the whole workflow: load, validation, DAG).
Prints the wall time, the jobs per rule, the jobs per site, and (with the
SLURM profile's groups) how many SLURM submissions that makes.

    .venv/bin/python bench/bench_dag.py                 # 384 wells x 4 fields
    .venv/bin/python bench/bench_dag.py --wells 96 --fields 2 --keep /tmp/plate96

Target (issue 7): <= 30 s for 1,536 sites.
"""

from __future__ import annotations

import argparse
import re
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


def write_study(workdir: Path, n_wells: int, n_fields: int) -> int:
    sheet = plate_sheet(n_wells, n_fields)
    sheet.to_csv(workdir / "samples.tsv", sep="\t", index=False)
    cfg = yaml.safe_load((REPO / "tests" / "config" / "config.yaml").read_text())
    cfg["samples"] = "samples.tsv"
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return len(sheet)


def dry_run(workdir: Path, *extra: str) -> tuple[float, str]:
    cmd = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "-d", str(workdir),
           "--configfile", "config.yaml", "-n", *extra]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)
    seconds = time.perf_counter() - t0
    if res.returncode != 0:
        sys.exit(f"dry run failed:\n{res.stderr[-4000:]}")
    return seconds, res.stdout + res.stderr


def job_stats(log: str) -> Counter:
    """Jobs per rule from Snakemake's 'Job stats' table."""
    counts: Counter = Counter()
    table = log.split("Job stats:", 1)[-1]
    for line in table.splitlines():
        m = re.match(r"^(\w+)\s+(\d+)\s*$", line.strip())
        if m and m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wells", type=int, default=384)
    ap.add_argument("--fields", type=int, default=4)
    ap.add_argument("--keep", type=Path, help="write the study here and keep it")
    args = ap.parse_args()

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="bench_dag_"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        n_sites = write_study(workdir, args.wells, args.fields)
        seconds, log = dry_run(workdir, "--quiet", "rules")
        counts = job_stats(log)
        total = sum(counts.values())
        print(f"sites: {n_sites} ({args.wells} wells x {args.fields} fields)")
        print(f"dry run (load + validate + DAG, {total} jobs): {seconds:.1f} s "
              f"(target <= 30 s for 1,536 sites)")
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
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
