"""Event scoring on a held-out simulated study: the demo's wells under another plate name.

Every rule and threshold of the events stage was chosen on the 15 demo sites
(plate ``P1``), so their precision and recall are also a training score. A
site's simulation seed derives from ``simulate.seed`` and its plate / well /
field (SHA-256), so renaming the plate gives 15 new sites of the same design
(same conditions, cell numbers and outcome probabilities, other random draws).
This script copies the working tree without its outputs into ``--work``,
renames the sample sheet's plate, runs the workflow there up to
``results/validation/events.parquet`` (simulate, segment with the demo run's
trained models, track, score, validate on both the true labels and the
workflow's own masks) and prints precision / recall per event type and source.

Needs a finished demo run in the repository (``resources/models/trained``: its
Cellpose weights are reused, not retrained). About 26 min on 2 CPU cores
(P7, 2026-12-03); with ``--rescore`` in a reused run directory about 3 min.

    .venv/bin/python bench/heldout_events.py [--plate P9] [--cores 2] [--work DIR] [--rescore]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
from common import REPO, RESULTS, git_commit

#: working-tree paths not copied: environment, outputs, caches, the demo's simulated sites
SKIP = {".venv", "results", ".snakemake", "logs", "benchmarks", ".git", ".ruff_cache",
        ".pytest_cache"}


def copy_tree(src: Path, dst: Path) -> None:
    """Copy ``src`` into ``dst`` without :data:`SKIP` and ``resources/simulated``.

    File times are kept, so the copied trained models stay newer than their
    inputs and Snakemake does not train them again.
    """
    def ignore(folder: str, names: list[str]) -> set[str]:
        here = Path(folder).resolve()
        skip = {n for n in names if here == src and n in SKIP}
        if here == src / "resources":
            skip |= {"simulated"} & set(names)
        return skip | {n for n in names if n == "__pycache__"}

    shutil.copytree(src, dst, ignore=ignore, symlinks=True, dirs_exist_ok=False)


def rename_plate(sheet: Path, plate: str) -> pd.DataFrame:
    """Give every sample-sheet row the plate ``plate`` (and its simulated image path)."""
    df = pd.read_csv(sheet, sep="\t", dtype=str, keep_default_na=False)
    old = df["plate"].copy()
    df["plate"] = plate
    if "image" in df:
        df["image"] = [p.replace(f"/{o}/", f"/{plate}/", 1) for p, o in
                       zip(df["image"], old, strict=True)]
    df.to_csv(sheet, sep="\t", index=False)
    return df


def summary(matches: Path) -> pd.DataFrame:
    """Per source and event type: counts, precision, recall (``events.validate.summarize``)."""
    from livescreen.events.validate import summarize

    m = pd.read_parquet(matches)
    return pd.concat([summarize(g).assign(source=src) for src, g in m.groupby("source")],
                     ignore_index=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--plate", default="P9", help="plate name of the held-out sites")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--work", type=Path, default=None,
                    help="run directory (default /tmp/livescreen-heldout-PLATE; reused if "
                         "it exists: the workflow then only does what is missing)")
    ap.add_argument("--rescore", action="store_true",
                    help="rerun score_events and validation in a reused run directory "
                         "(Snakemake does not see changes to the livescreen library)")
    args = ap.parse_args(argv)
    work = (args.work or Path(f"/tmp/livescreen-heldout-{args.plate}")).resolve()
    trained = REPO / "resources" / "models" / "trained"
    if not trained.is_dir():
        print(f"no trained models in {trained}: run the demo first (README)", file=sys.stderr)
        return 2
    if not work.exists():
        copy_tree(REPO, work)
        sheet = rename_plate(work / "config" / "samples.tsv", args.plate)
        print(f"copied the working tree to {work}; {len(sheet)} sites on plate {args.plate}")
    cmd = [sys.executable, "-m", "snakemake", "--cores", str(args.cores),
           *(["--forcerun", "score_events"] if args.rescore else []),
           "results/validation/events.parquet"]
    print("running:", " ".join(cmd), f"(in {work})", flush=True)
    if subprocess.run(cmd, cwd=work).returncode:
        print(f"the workflow failed; logs under {work}/logs", file=sys.stderr)
        return 1
    table = summary(work / "results" / "validation" / "events_matches.parquet")
    with pd.option_context("display.width", 200):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"heldout_events_{args.plate}.json"
    out.write_text(json.dumps({"plate": args.plate, "work": str(work), "commit": git_commit(),
                               "rows": table.to_dict("records")}, indent=1, default=str))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
