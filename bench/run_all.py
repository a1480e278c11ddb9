"""The benchmark suite (issue 9): every figure measured side by side in one run, one table.

    .venv/bin/python bench/run_all.py                 # full suite (~20 min on 2 busy cores)
    .venv/bin/python bench/run_all.py --quick         # smaller sizes, no 1,536-site DAG (~4 min)
    .venv/bin/python bench/run_all.py --only segment,events --run-dir /path/to/finished/run

Figures (module, ``bench/results/<name>.json``):

1. ``segment`` (bench_segment.py): s/frame of the segment stage vs Cellpose's
   default ``eval`` vs the bare forward pass on the same frames (demo weights,
   simulated frames with ground truth), masks compared; peak RSS of a job.
   Target: stage <= 1.3x forward pass on CPU; masks identical or AP diff <= 0.005.
2. ``track`` (bench_track.py): objects/s of the track stage (btrack) vs trackpy
   on the same detections, link recall/precision beside speed.
3. ``events`` (bench_events.py): s per 10^5 object-frames at 1x and 10x the
   objects. Target: 10x the objects in <= 12x the time.
4. ``demo`` (bench_demo.py): wall time per rule and stage of a finished run from
   its Snakemake ``benchmarks/`` files (``--run-dir``, default ``.``). Target:
   everything but segmentation <= 10 %.
5. ``dag`` (bench_dag.py's ``noop_rerun``): dry-run and no-op rerun time for 96,
   384 and 1,536 sites (``--quick``: 96 and 384). Target: <= 30 s at 1,536.
6. ``memory`` (bench_memory.py): peak RSS of a segment job on a short and a long
   movie of 1024 x 1024 frames. Target: growth <= 4 frames' data.

Each benchmark's JSON holds the machine (CPU count and model, GPU, load average
at start and end, git commit, date), the options, the figures and every number
measured. ``bench/results/summary.json`` holds the table. On a shared machine
absolute times are inflated by the load; ratios measured side by side (stage vs
forward pass, 1x vs 10x, btrack vs trackpy) remain comparable.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import traceback
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, figure, fmt_s, format_table, machine_info, met_text, write_result  # noqa: E402

# demo last: it only reads files, which a run still going may yet write
ORDER = ("segment", "track", "events", "dag", "memory", "demo")


def dag(quick: bool = False, sizes: tuple[tuple[int, int], ...] | None = None) -> dict:
    """Dry run and no-op rerun of 96, 384 and 1,536-site studies (bench_dag.noop_rerun)."""
    import bench_dag

    sizes = sizes or (((96, 1), (96, 4)) if quick else ((96, 1), (96, 4), (384, 4)))
    rows, figs = [], []
    for wells, fields in sizes:
        r = bench_dag.noop_rerun(wells, fields)
        rows.append(r)
        print(f"  {r['sites']:5d} sites: dry run {r['dry_run_summary_s']:.1f} s wall "
              f"({r['dry_run_summary_cpu_s']:.1f} s CPU), listing every job "
              f"{r['dry_run_s']:.1f} s, no-op rerun {r['noop_rerun_s']:.1f} s wall "
              f"({r['noop_rerun_cpu_s']:.1f} s CPU){'' if r['noop'] else ' (NOT a no-op)'}",
              flush=True)
        at_target = r["sites"] >= 1536
        worst = max(r["dry_run_summary_s"], r["noop_rerun_s"])
        figs.append(figure(
            f"5 DAG: {r['sites']:,} sites ({r['outputs']:,} outputs)",
            f"dry run {fmt_s(r['dry_run_summary_s'])} ({fmt_s(r['dry_run_summary_cpu_s'])} "
            f"CPU; -n --quiet rules), {fmt_s(r['dry_run_s'])} listing every job (-n); no-op "
            f"rerun {fmt_s(r['noop_rerun_s'])} ({fmt_s(r['noop_rerun_cpu_s'])} CPU)"
            + ("" if r["noop"] else ", rerun was not a no-op"),
            "<= 30 s at 1,536 sites" if at_target else "- (30 s at 1,536)",
            worst <= 30 if at_target else None))
    if not any(r["sites"] >= 1536 for r in rows):
        figs.append(figure("5 DAG: 1,536 sites", "skipped (--quick)", "<= 30 s", None))
    # a real plate: no simulation jobs, movies present (placeholders), headers read
    wells, fields = sizes[-1]
    plate = bench_dag.placeholder_plate(wells, fields)
    print(f"  {plate['sites']:5d} sites, real plate (placeholder movies): dry run "
          f"{plate['dry_run_s']:.1f} s wall, {plate['dry_run_cached_headers_s']:.1f} s with "
          f"cached headers", flush=True)
    at_target = plate["sites"] >= 1536
    worst = max(plate["dry_run_s"], plate["dry_run_cached_headers_s"])
    figs.append(figure(
        f"5 DAG: {plate['sites']:,} sites, real plate ({plate['jobs']:,} jobs)",
        f"dry run {fmt_s(plate['dry_run_s'])} ({fmt_s(plate['dry_run_cpu_s'])} CPU; reads "
        f"{plate['sites']:,} movie headers), {fmt_s(plate['dry_run_cached_headers_s'])} "
        f"({fmt_s(plate['dry_run_cached_headers_cpu_s'])} CPU) with cached headers",
        "<= 30 s at 1,536 sites" if at_target else "- (30 s at 1,536)",
        worst <= 30 if at_target else None))
    return {"figures": figs, "results": {"noop_rerun": rows, "real_plate": plate}}


def sort_rows(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: r["figure"][:1])  # by figure number, stable


def print_table(rows: list[dict]) -> None:
    rows = sort_rows(rows)
    print(format_table(rows))
    not_met = [r for r in rows if r["met"] is False]
    if not_met:
        print("\nnot met: " + "; ".join(r["figure"] for r in not_met))


def stored_results() -> list[dict]:
    """The latest bench/results/<name>.json of each suite benchmark present."""
    docs = []
    for name in ORDER:
        path = RESULTS / f"{name}.json"
        if path.is_file():
            try:
                doc = json.loads(path.read_text())
            except json.JSONDecodeError:
                continue
            if "figures" in doc:  # (bench_dag.py's own dag.json has none)
                docs.append(doc)
    return docs


def write_summary() -> None:
    """bench/results/summary.json: every stored benchmark's rows, with date and load."""
    docs = stored_results()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "summary.json").write_text(json.dumps({"benchmarks": [
        {"benchmark": d["benchmark"], "date": d["machine"].get("date"),
         "git_commit": d["machine"].get("git_commit"),
         "loadavg_start": d["machine"].get("loadavg_start"), "options": d.get("options"),
         "table": [{**r, "met": met_text(r["met"])} for r in d["figures"]]}
        for d in docs]}, indent=1) + "\n")


def show_stored() -> None:
    """Print the table of the stored results (--table), each benchmark's date and load."""
    docs = stored_results()
    for d in docs:
        m = d["machine"]
        print(f"{d['benchmark']:8s} {m.get('date')}  commit {(m.get('git_commit') or '?')[:10]}"
              f"  load {m.get('loadavg_start', ['?'])[0]}  quick {d['options'].get('quick')}")
    print()
    print_table([r for d in docs for r in d["figures"]])


def benchmarks(args) -> dict:
    import bench_demo
    import bench_events
    import bench_memory
    import bench_segment
    import bench_track

    mem = {"frames": tuple(args.memory_frames)} if args.memory_frames else {}
    if args.memory_size:
        mem["size"] = args.memory_size
    return {
        "segment": (bench_segment.run, {"threads": args.threads}),
        "track": (bench_track.run, {}),
        "events": (bench_events.run, {}),
        "demo": (bench_demo.run, {"run_dir": args.run_dir}),
        "dag": (dag, {}),
        "memory": (bench_memory.run, {"threads": args.threads, **mem}),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="smaller sizes, fewer rounds, no 1,536-site DAG")
    ap.add_argument("--only", default=",".join(ORDER),
                    help=f"comma-separated subset of {','.join(ORDER)}")
    ap.add_argument("--run-dir", default=".",
                    help="finished workflow run whose benchmarks/ figure 4 reads (default .)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="torch threads of the segmentation figures (default: all cores)")
    ap.add_argument("--memory-frames", type=int, nargs=2, metavar=("SHORT", "LONG"),
                    help="movie lengths of figure 6 (default 4 20; quick 4 12)")
    ap.add_argument("--memory-size", type=int, help="frame size of figure 6 (default 1024)")
    ap.add_argument("--table", action="store_true",
                    help="run nothing: print the table of the stored bench/results/*.json")
    args = ap.parse_args()
    if args.table:
        show_stored()
        return 0
    chosen = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(chosen) - set(ORDER)
    if unknown:
        ap.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {ORDER}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore", message="Sparse invariant checks")
    os.environ.setdefault("TQDM_DISABLE", "1")

    suite_machine = machine_info()
    print(f"benchmark suite{' (quick)' if args.quick else ''}: {suite_machine['date']}, "
          f"commit {(suite_machine['git_commit'] or 'unknown')[:10]}, "
          f"{suite_machine['cpus']} CPUs ({suite_machine['cpu_model']}), GPU "
          f"{suite_machine['gpu'] or 'none'}, load average {suite_machine['loadavg_start']}",
          flush=True)
    table, failed = [], []
    registry = benchmarks(args)
    t_suite = time.perf_counter()
    for name in [n for n in ORDER if n in chosen]:
        fn, opts = registry[name]
        machine = machine_info()
        print(f"\n== {name} (load average {machine['loadavg_start'][0]:.1f})", flush=True)
        t0 = time.perf_counter()
        try:
            out = fn(quick=args.quick, **opts)
        except (Exception, SystemExit) as err:  # one failure must not stop the suite
            traceback.print_exc()
            failed.append(name)
            out = {"figures": [figure(f"{name}: FAILED", f"{type(err).__name__}: {err}"[:200],
                                      "-", False)],
                   "results": {"error": traceback.format_exc()}}
        seconds = time.perf_counter() - t0
        path = write_result(name, machine, out, {"quick": args.quick, **opts}, seconds)
        print(f"   {name}: {seconds:.0f} s -> {path.relative_to(RESULTS.parents[1])}",
              flush=True)
        table += out["figures"]

    load_end = [round(v, 2) for v in os.getloadavg()]
    print(f"\nResults ({suite_machine['date']}, {suite_machine['cpus']} CPUs, load average "
          f"{suite_machine['loadavg_start'][0]:.1f} at start, {load_end[0]:.1f} at end; "
          f"suite {time.perf_counter() - t_suite:.0f} s):\n")
    print_table(table)
    write_summary()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
