"""Wall time per stage of a finished workflow run, from Snakemake's ``benchmark:`` files.

Reads ``<run dir>/benchmarks/**.tsv`` (one file per job: ``s``, ``max_rss``,
``cpu_time``, ...), maps each file to its rule by its path (the rules'
``benchmark:`` patterns in workflow/rules/*.smk) and prints, per rule, the
number of jobs, total and mean seconds, total CPU seconds and the largest
max RSS, then the share of segmentation.

The share is taken over the work of a real screen: simulation (the demo's
stand-in for the microscope), the validation against the simulator's truth
(simulated studies only) and model training (once per model, not per screen;
skipped when weights are given) are listed but left out of it.
Target (issue 9): everything but segmentation <= 10 % of the time.

    .venv/bin/python bench/bench_demo.py [RUN_DIR]     # default: .
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from common import figure

#: stage of each rule; rules outside the screen's share are marked None
STAGES = {
    "simulate_site": None, "simulate_training_frames": None, "train_cellpose": None,
    "inspect_image": "qc", "segment_population": "segment", "track_site": "track",
    "segment_chunk": "segment", "merge_segment_chunks": "segment",
    "score_events": "events", "event_gallery": "events", "validate_events": None,
    "aggregate_tables": "tables", "stats_tables": "stats", "figures": "figures",
}


def rule_of(rel: Path) -> str:
    """Rule of a benchmark file, from its path under benchmarks/ (see workflow/rules)."""
    parts = rel.parts
    top = parts[0]
    if len(parts) == 1:
        return rel.stem  # aggregate_tables.tsv, stats_tables.tsv
    if top == "segment":
        if len(parts) == 3 and parts[1] == "training_frames":
            return "simulate_training_frames"
        if len(parts) == 3 and parts[1] == "train":
            return "train_cellpose"
        return "segment_population"
    if top == "events":
        if len(parts) == 2 and parts[1] in ("gallery.tsv", "validate.tsv"):
            return {"gallery.tsv": "event_gallery", "validate.tsv": "validate_events"}[parts[1]]
        return "score_events"
    return {"track": "track_site", "simulate_site": "simulate_site",
            "inspect_image": "inspect_image", "figures": "figures"}.get(top, top)


def read_benchmarks(run_dir: Path) -> pd.DataFrame:
    """One row per benchmark file: rule, path and the file's numbers (last line)."""
    root = Path(run_dir) / "benchmarks"
    rows = []
    for f in sorted(root.rglob("*.tsv")):
        try:
            t = pd.read_csv(f, sep="\t")
        except (pd.errors.ParserError, pd.errors.EmptyDataError):
            continue
        if t.empty or "s" not in t:
            continue
        r = t.iloc[-1]
        rel = f.relative_to(root)
        rows.append({"rule": rule_of(rel), "file": str(rel), "s": float(r["s"]),
                     "cpu_time": float(r.get("cpu_time", float("nan"))),
                     "max_rss": pd.to_numeric(r.get("max_rss"), errors="coerce")})
    return pd.DataFrame(rows, columns=["rule", "file", "s", "cpu_time", "max_rss"])


def summarise(jobs: pd.DataFrame) -> pd.DataFrame:
    per_rule = jobs.groupby("rule").agg(jobs=("s", "size"), total_s=("s", "sum"),
                                        mean_s=("s", "mean"), cpu_s=("cpu_time", "sum"),
                                        max_rss_mib=("max_rss", "max"))
    per_rule["stage"] = [STAGES.get(r, "other") or "(not counted)" for r in per_rule.index]
    return per_rule.sort_values("total_s", ascending=False)


#: rules a complete run may lack (training: custom weights; chunks: frames_per_job unset,
#: else segment_population)
OPTIONAL_RULES = {"simulate_training_frames", "train_cellpose", "segment_chunk",
                  "merge_segment_chunks"}
#: stages with one job per site (and population); the others run once per study
SITE_STAGES = ("qc", "segment", "track")
SITE_RULES = ("score_events",)


def site_study_split(counted: pd.DataFrame) -> dict:
    """Job-seconds per site vs per study, and the study size where others reach 10 %.

    Parameters
    ----------
    counted : pandas.DataFrame
        :func:`summarise` rows of the counted rules (index: rule).

    Returns
    -------
    dict
        ``n_sites`` (score_events jobs), per-site seconds of segmentation and of
        the other per-site rules, their share, the per-study seconds and the
        smallest number of sites at which others are <= 10 % (None if never).
    """
    per_site = counted["stage"].isin(SITE_STAGES) | counted.index.isin(SITE_RULES)
    n_sites = int(counted.loc[counted.index.isin(SITE_RULES), "jobs"].sum())
    if not n_sites:
        return {"n_sites": 0}
    seg = counted.loc[counted["stage"] == "segment", "total_s"].sum() / n_sites
    other = counted.loc[per_site & (counted["stage"] != "segment"), "total_s"].sum() / n_sites
    study = float(counted.loc[~per_site, "total_s"].sum())
    # fixed + N*other <= 0.1 * (fixed + N*(other + seg))
    margin = 0.1 * seg - 0.9 * other
    sites = None if margin <= 0 else max(1, int(-(-0.9 * study // margin)))
    return {"n_sites": n_sites, "site_segment_s": float(seg), "site_other_s": float(other),
            "site_other_share": float(other / (other + seg)), "study_s": study,
            "sites_for_target": sites}


def run(quick: bool = False, run_dir: str | Path = ".") -> dict:
    """Suite entry: per-rule table and segmentation share of a finished run's benchmarks/."""
    run_dir = Path(run_dir).resolve()
    jobs = read_benchmarks(run_dir)
    if jobs.empty:
        msg = f"no benchmark files under {run_dir}/benchmarks (run the workflow first)"
        print("  " + msg)
        return {"figures": [figure("4 Whole demo: segmentation share", "not measured: " + msg,
                                   "others <= 10%", None)],
                "results": {"run_dir": str(run_dir), "error": msg}}
    per_rule = summarise(jobs)
    print(f"  run directory {run_dir}: {len(jobs)} benchmark files")
    print("  " + per_rule.to_string(float_format=lambda v: f"{v:.1f}").replace("\n", "\n  "))
    counted = per_rule[per_rule["stage"] != "(not counted)"]
    total, cpu_total = counted["total_s"].sum(), counted["cpu_s"].sum()
    seg = counted.loc[counted["stage"] == "segment", ["total_s", "cpu_s"]].sum()
    share, cpu_share = seg["total_s"] / total, seg["cpu_s"] / cpu_total
    others = per_rule[per_rule["stage"] == "(not counted)"]["total_s"].sum()
    missing = sorted(set(STAGES) - set(per_rule.index) - OPTIONAL_RULES)
    complete = not missing
    stages = counted.groupby("stage")[["total_s", "cpu_s"]].sum()
    stage_txt = ", ".join(f"{k} {v:.0f} s" for k, v in
                          stages["total_s"].sort_values(ascending=False).items())
    value = (f"segmentation {share:.0%} of {total:.0f} job-s wall ({cpu_share:.0%} of "
             f"{cpu_total:.0f} CPU-s); others {1 - share:.0%} ({stage_txt})")
    if not complete:
        value += f"; run incomplete: no jobs of {', '.join(missing)}"
    figs = [figure(f"4 Whole demo: stage times ({run_dir.name or run_dir})", value,
                   "others <= 10%", (1 - share) <= 0.10 if complete else None)]
    split = site_study_split(counted)
    if split["n_sites"]:
        n_even = split["sites_for_target"]
        figs.append(figure(
            "4 Whole demo: per site vs per study",
            f"per site: segmentation {split['site_segment_s']:.1f} s, others "
            f"{split['site_other_s']:.1f} s ({split['site_other_share']:.1%}); per study "
            f"(tables, statistics, figures, gallery): {split['study_s']:.0f} s fixed; others "
            f"<= 10% from {'-' if n_even is None else n_even} sites (this run: "
            f"{split['n_sites']})",
            "others <= 10% per site", split["site_other_share"] <= 0.10))
    results = {"run_dir": str(run_dir), "n_files": len(jobs), "complete": complete,
               "missing_rules": missing,
               "per_rule": per_rule.reset_index().to_dict("records"),
               "per_stage": stages.reset_index().to_dict("records"),
               "segmentation_share_wall": share, "segmentation_share_cpu": cpu_share,
               "counted_total_s": total, "not_counted_s": others, "site_study_split": split}
    return {"figures": figs, "results": results}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_dir", nargs="?", default=".")
    args = ap.parse_args()
    out = run(run_dir=args.run_dir)
    f = out["figures"][0]
    print(f"{f['figure']}: {f['value']} (target {f['target']})")


if __name__ == "__main__":
    main()
