"""Coverage of the statistics' 95% CIs over repeated simulated screens.

Perfect-scorer case: the simulator's truth tables go straight into the
statistics, isolating them from segmentation, tracking and event scoring.
Each seed is a small screen (control and inh_10uM, 3 wells each, demo model at
a smaller field); we count how often the 95% CI of the difference
inh_10uM - control (killed, cell-in-cell) and the per-condition CIs cover the
configured probabilities.

    .venv/bin/python bench/bench_stats_coverage.py --seeds 20
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import pandas as pd
import yaml

from livescreen.stats.pipeline import analyse
from livescreen.stats.simulated import truth_screen

REPO = Path(__file__).resolve().parents[1]
METRICS = {"frac_killed": "p_kill", "frac_cell_in_cell": "p_cell_in_cell"}


def small_sheet(n_wells: int) -> pd.DataFrame:
    rows = []
    for cond, comp, dose, role, col in [("control", "none", 0.0, "negative_control", "02"),
                                        ("inh_10uM", "CICi", 10.0, "sample", "05")]:
        for r in "BCDEFG"[:n_wells]:
            rows.append({"site_id": f"P1/{r}{col}/1", "plate": "P1", "well": f"{r}{col}",
                         "field": "1", "condition": cond, "compound": comp, "dose": dose,
                         "dose_unit": "uM", "role": role, "image": "none"})
    return pd.DataFrame(rows)


def one_seed(cfg: dict, sheet: pd.DataFrame, seed: int) -> list[dict]:
    sc = truth_screen(cfg["simulate"], cfg["imaging"], sheet, seed)
    out = analyse(sc["fates"], sc["effectors"], sheet, "control")
    truth = sc["truth"]
    cmp = out["comparisons"].set_index(["condition", "metric"])
    cond = out["conditions"].set_index(["condition", "metric"])
    rows = []
    for m, p in METRICS.items():
        diff = truth.loc["inh_10uM", p] - truth.loc["control", p]
        r = cmp.loc[("inh_10uM", m)]
        rows.append({"seed": seed, "estimand": f"difference {m}", "truth": diff,
                     "estimate": r["difference"], "covered": r["diff_ci_low"] <= diff
                     <= r["diff_ci_high"], "right_sign": (r["difference"] > 0) == (diff > 0)})
        ratio = truth.loc["inh_10uM", p] / truth.loc["control", p]
        rows.append({"seed": seed, "estimand": f"ratio {m}", "truth": ratio,
                     "estimate": r["ratio"], "covered": r["ratio_ci_low"] <= ratio
                     <= r["ratio_ci_high"], "right_sign": (r["ratio"] > 1) == (ratio > 1)})
        for c in ("control", "inh_10uM"):
            e = cond.loc[(c, m)]
            rows.append({"seed": seed, "estimand": f"{c} {m}", "truth": truth.loc[c, p],
                         "estimate": e["mean"], "covered": e["ci_low"] <= truth.loc[c, p]
                         <= e["ci_high"], "right_sign": True})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--wells", type=int, default=3)
    ap.add_argument("--size-px", type=int, default=192)
    ap.add_argument("--out", default="benchmarks/bench_stats_coverage.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["simulate"].update(height_px=args.size_px, width_px=args.size_px)
    sheet = small_sheet(args.wells)
    t0 = time.perf_counter()
    rows = [r for s in range(args.seeds) for r in one_seed(cfg, sheet, 1000 + s)]
    df = pd.DataFrame(rows)
    summary = df.groupby("estimand").agg(coverage=("covered", "mean"),
                                         right_sign=("right_sign", "mean"),
                                         truth=("truth", "first"), mean_estimate=("estimate",
                                                                                  "mean"))
    print(summary.to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"{args.seeds} seeds x {len(sheet)} sites in {time.perf_counter() - t0:.0f} s")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"args": vars(args),
                                          "summary": summary.reset_index().to_dict("records")},
                                         indent=1, default=float))


if __name__ == "__main__":
    main()
