"""TRA of the track stage on CTC Fluo-N2DH-GOWT1 01, GT markers as detections.

Usage: python bench/gowt1_tra.py [N_FRAMES]   (default: all 92 frames)
"""

import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

from livescreen.ctc import to_ctc, write_ctc
from livescreen.track import track_site
from livescreen.track_eval import ctc_scores
from livescreen.track_models import tracking_params

ROOT = Path(__file__).resolve().parents[1] / ".." / "shared" / "realdata" / "ctc-Fluo-N2DH-GOWT1"
# GOWT1: 0.240 um pixels (CTC dataset page), 5 min between frames
IMAGING = {"pixel_size_um": 0.24, "frame_interval_min": 5.0, "channels": {"target": 0}}


def load(n_frames=None):
    masks = sorted((ROOT / "01_GT" / "TRA").glob("man_track*.tif"))[:n_frames]
    raw = sorted((ROOT / "01").glob("t*.tif"))[:n_frames]
    labels = np.stack([tifffile.imread(p) for p in masks]).astype(np.uint32)
    movie = np.stack([tifffile.imread(p) for p in raw])[:, None]
    return labels, movie


def run(n_frames=None, params=None):
    labels, movie = load(n_frames)
    t0 = time.perf_counter()
    table = track_site(labels, movie, params or tracking_params("target"), imaging=IMAGING,
                       plate="ctc", well="GOWT1", field="01", population="target")
    seconds = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        gt_dir = Path(tmp) / "gt"
        gt_masks = labels
        lineage = np.loadtxt(ROOT / "01_GT" / "TRA" / "man_track.txt", dtype=np.int64, ndmin=2)
        n = labels.shape[0]
        keep = lineage[:, 1] < n
        lineage = lineage[keep]
        lineage[:, 2] = np.minimum(lineage[:, 2], n - 1)
        lineage[~np.isin(lineage[:, 3], lineage[:, 0]), 3] = 0
        import pandas as pd

        write_ctc(gt_dir, gt_masks, pd.DataFrame(lineage, columns=["track_id", "start", "end",
                                                                   "parent"]), "man_track.txt")
        res_masks, res_lineage = to_ctc(table, labels)
        write_ctc(Path(tmp) / "res", res_masks, res_lineage)
        scores = ctc_scores(gt_dir, Path(tmp) / "res")
    return table, scores, seconds


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    n = int(sys.argv[1]) if len(sys.argv) > 1 else None
    table, scores, seconds = run(n)
    print(f"frames={table['frame'].max() + 1} objects={len(table)} tracks="
          f"{table['track_id'].nunique()} track_site_s={seconds:.1f} "
          f"objects_per_s={len(table) / seconds:.0f}")
    print({k: round(v, 4) for k, v in scores.items()})
