"""Tracking accuracy on simulated sites: CTC TRA, link recall/precision, division recall.

Runs the track stage's library code on the simulator's ground-truth label
stacks (so only linking is measured) for the first N sites of a study.

Usage::

    .venv/bin/python bench/track_accuracy.py [config/config.yaml] [N_SITES]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from livescreen.ctc import to_ctc, write_ctc
from livescreen.simulate import params_for_site, simulate_site, site_seed
from livescreen.track import track_site
from livescreen.track_eval import ctc_scores, link_scores
from livescreen.track_models import tracking_params

os.environ.setdefault("TQDM_DISABLE", "1")


def site_accuracy(site, row: dict, imaging: dict, population: str) -> dict:
    """Track one population of a simulated site on its true labels and score it."""
    labels = site.labels[population]
    start = time.perf_counter()
    pred = track_site(labels, site.movie, tracking_params(population), imaging=imaging,
                      plate=row["plate"], well=row["well"], field=row["field"],
                      population=population)
    seconds = time.perf_counter() - start
    truth = site.tracks[site.tracks["population"] == population]
    truth = truth[["track_id", "frame", "parent_track_id"]].assign(label_id=truth["track_id"])
    scores = link_scores(pred, truth)
    with tempfile.TemporaryDirectory() as tmp:
        write_ctc(Path(tmp) / "gt", *to_ctc(truth, labels), "man_track.txt")
        write_ctc(Path(tmp) / "res", *to_ctc(pred, labels), "res_track.txt")
        scores.update(ctc_scores(Path(tmp) / "gt", Path(tmp) / "res"))
    return {"site": f"{row['plate']}/{row['well']}/{row['field']}", "population": population,
            "seconds": seconds, **scores}


def simulated_sites(config_path: str, n_sites: int):
    """Yield (sample row, simulated site) for the first ``n_sites`` of a study."""
    cfg = yaml.safe_load(Path(config_path).read_text())
    # Sheet paths are relative to the study's working directory: config/.. here.
    root = Path(config_path).resolve().parents[1]
    sheet = pd.read_csv(root / cfg["samples"], sep="\t", dtype=str).head(n_sites)
    for row in sheet.to_dict("records"):
        row["dose"] = float(row["dose"])
        seed = site_seed(cfg["simulate"]["seed"], row["plate"], row["well"], row["field"])
        yield row, simulate_site(params_for_site(cfg["simulate"], cfg["imaging"], row), seed), cfg


def main(config_path: str = "config/config.yaml", n_sites: int = 6) -> pd.DataFrame:
    rows = [site_accuracy(site, row, cfg["imaging"], pop)
            for row, site, cfg in simulated_sites(config_path, n_sites)
            for pop in ("target", "effector")]
    table = pd.DataFrame(rows)
    cols = ["site", "population", "TRA", "link_recall", "link_precision", "division_recall",
            "n_divisions_true", "seconds"]
    print(table[cols].to_string(index=False, float_format="%.4f"))
    print("\nminimum TRA per population (target >= 0.95):")
    print(table.groupby("population")["TRA"].min().to_string(float_format="%.4f"))
    return table


if __name__ == "__main__":
    main(*(sys.argv[1:2] or ["config/config.yaml"]), *(map(int, sys.argv[2:3])))
