"""Tracking accuracy against ground truth, and a small synthetic test scene.

* :func:`link_scores` - on simulated sites (label value == ground-truth track
  id): the fraction of ground-truth links (consecutive detections of a track,
  and mother -> daughter at divisions) that the tracker reproduced, its
  precision, and the division recall.
* :func:`ctc_scores` - Cell Tracking Challenge TRA (plus DET, LNK) computed
  with ``traccuracy`` from CTC folders (:mod:`livescreen.ctc`).
* :func:`synthetic_scene` - discs doing persistent random walks, dividing,
  leaving the field; for tests and the benchmark when the project simulator
  is not used.
"""

from __future__ import annotations

import logging
from os import PathLike

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


def _edges(df: pd.DataFrame, track: str, parent: str) -> set[tuple[int, int, int, int]]:
    """Links as ((frame, label) -> (frame, label)) tuples from a track table."""
    d = df.sort_values([track, "frame"], kind="stable")
    t, f, lab = (d[c].to_numpy(np.int64) for c in (track, "frame", "label_id"))
    same = t[1:] == t[:-1]
    edges = set(zip(f[:-1][same], lab[:-1][same], f[1:][same], lab[1:][same], strict=True))
    first = d.drop_duplicates(track, keep="first").set_index(track)
    last = d.drop_duplicates(track, keep="last").set_index(track)
    born = first[first[parent] > 0]
    born = born[born[parent].isin(last.index)]
    mom = last.loc[born[parent]]
    edges |= set(zip(mom["frame"].to_numpy(np.int64), mom["label_id"].to_numpy(np.int64),
                     born["frame"].to_numpy(np.int64), born["label_id"].to_numpy(np.int64),
                     strict=True))
    return edges


def link_scores(pred: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    """Compare predicted tracks with ground truth on the same detections.

    Parameters
    ----------
    pred : pandas.DataFrame
        Tracks table (``track_id``, ``frame``, ``label_id``, ``parent_track_id``).
    truth : pandas.DataFrame
        Ground truth with ``track_id``, ``frame``, ``label_id`` and
        ``parent_track_id`` (0 = none), on the same label stack.

    Returns
    -------
    dict
        ``link_recall``: fraction of ground-truth track-frames (links from a
        detection to the next detection of the same cell, and mother ->
        daughter) that are linked in ``pred``; ``link_precision``; counts
        ``n_links_true``, ``n_links_pred``; ``division_recall`` (fraction of
        ground-truth divisions with both daughters linked to the mother; NaN
        without divisions) and ``n_divisions_true``, ``n_divisions_pred``.
    """
    e_true = _edges(truth, "track_id", "parent_track_id")
    e_pred = _edges(pred, "track_id", "parent_track_id")
    hit = e_true & e_pred
    first = truth.sort_values("frame").drop_duplicates("track_id")
    kids = first[first["parent_track_id"] > 0]
    last = truth.sort_values("frame").drop_duplicates("track_id", keep="last").set_index(
        "track_id")
    n_div, ok = 0, 0
    for mother, grp in kids.groupby("parent_track_id"):
        if mother not in last.index or len(grp) < 2:
            continue
        n_div += 1
        m = last.loc[mother]
        ok += all((int(m["frame"]), int(m["label_id"]), int(r.frame), int(r.label_id)) in e_pred
                  for r in grp.itertuples())
    pred_first = pred.drop_duplicates("track_id")
    n_div_pred = int(pred_first.loc[pred_first["parent_track_id"] > 0,
                                    "parent_track_id"].nunique())
    return {
        "link_recall": len(hit) / len(e_true) if e_true else float("nan"),
        "link_precision": len(hit) / len(e_pred) if e_pred else float("nan"),
        "n_links_true": len(e_true), "n_links_pred": len(e_pred),
        "division_recall": ok / n_div if n_div else float("nan"),
        "n_divisions_true": n_div, "n_divisions_pred": n_div_pred,
    }


def ctc_scores(gt_dir: str | PathLike, res_dir: str | PathLike,
               gt_track_file: str = "man_track.txt", res_track_file: str = "res_track.txt",
               ) -> dict[str, float]:
    """CTC TRA, DET and LNK of a result folder against a ground-truth folder.

    Uses ``traccuracy`` (CTC matcher: a result mask matches a reference marker
    when it covers more than half of it; AOGM-based TRA as in the CTC).

    Parameters
    ----------
    gt_dir, res_dir : str or path-like
        CTC folders (one TIFF per frame plus the lineage file).
    gt_track_file, res_track_file : str, optional
        Lineage file names inside the folders.

    Returns
    -------
    dict
        ``TRA``, ``DET``, ``LNK`` and the AOGM error counts from traccuracy.
    """
    import os

    from traccuracy import run_metrics
    from traccuracy.loaders import load_ctc_data
    from traccuracy.matchers import CTCMatcher
    from traccuracy.metrics import CTCMetrics

    os.environ.setdefault("TQDM_DISABLE", "1")
    gt = load_ctc_data(str(gt_dir), os.path.join(gt_dir, gt_track_file), name="gt")
    res = load_ctc_data(str(res_dir), os.path.join(res_dir, res_track_file), name="res")
    results, _ = run_metrics(gt, res, CTCMatcher(), [CTCMetrics()])
    out = dict(results[0]["results"])
    return {k: float(v) for k, v in out.items() if isinstance(v, int | float)}


def _disc_offsets(radius: float) -> tuple[np.ndarray, np.ndarray]:
    r = int(np.ceil(radius))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    keep = yy**2 + xx**2 <= radius**2
    return yy[keep], xx[keep]


def synthetic_scene(n_cells: int = 20, n_frames: int = 20, shape: tuple[int, int] = (128, 128),
                    radius: float = 4.0, step_px: float = 1.0, persistence: float = 0.5,
                    p_divide: float = 0.0, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    """Discs doing persistent random walks, optionally dividing; ground truth.

    Parameters
    ----------
    n_cells : int
        Cells in the first frame, placed at least ``3 * radius`` apart when possible.
    n_frames : int
        Number of frames T.
    shape : tuple of int
        (Y, X) in pixels.
    radius : float
        Disc radius in pixels.
    step_px : float
        Typical displacement per frame (per-axis std of velocity noise), pixels.
    persistence : float
        Velocity memory in [0, 1): ``v <- persistence * v + noise``.
    p_divide : float
        Per-cell, per-frame probability of dividing (after 4 frames of age).
        Daughters appear ``radius`` from the mother's last position.
    seed : int
        Random seed.

    Returns
    -------
    labels : (T, Y, X) uint32
        Label value == ground-truth track id (later tracks paint over earlier).
    truth : pandas.DataFrame
        ``track_id, frame, label_id, y_px, x_px, parent_track_id`` for every
        cell visible in the labels (``label_id == track_id``).
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    dy, dx = _disc_offsets(radius)
    pos = []
    while len(pos) < n_cells:
        p = rng.uniform([radius, radius], [h - radius, w - radius])
        if all(np.hypot(*(p - q)) >= 3 * radius for q in pos) or rng.random() < 0.02:
            pos.append(p)
    cells = [{"id": i + 1, "pos": p, "vel": np.zeros(2), "age": 0, "parent": 0}
             for i, p in enumerate(pos)]
    next_id = n_cells + 1
    labels = np.zeros((n_frames, h, w), np.uint32)
    parents: dict[int, int] = {}
    for t in range(n_frames):
        if t > 0:
            moved = []
            for c in cells:
                if p_divide and c["age"] >= 4 and rng.random() < p_divide:
                    ang = rng.uniform(0, np.pi)
                    off = radius * np.array([np.sin(ang), np.cos(ang)])
                    for sign in (1, -1):
                        parents[next_id] = c["id"]
                        moved.append({"id": next_id, "pos": c["pos"] + sign * off,
                                      "vel": np.zeros(2), "age": 0, "parent": c["id"]})
                        next_id += 1
                    continue
                c["vel"] = persistence * c["vel"] + rng.normal(0, step_px, 2)
                c["pos"] = c["pos"] + c["vel"]
                c["age"] += 1
                moved.append(c)
            cells = [c for c in moved if 0 <= c["pos"][0] < h and 0 <= c["pos"][1] < w]
        for c in cells:
            yy = np.rint(c["pos"][0] + dy).astype(int)
            xx = np.rint(c["pos"][1] + dx).astype(int)
            ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            labels[t, yy[ok], xx[ok]] = c["id"]
    from livescreen.features import object_features

    feats = object_features(labels)
    truth = pd.DataFrame({
        "track_id": feats["label_id"].to_numpy(np.int64),
        "frame": feats["frame"].to_numpy(np.int64),
        "label_id": feats["label_id"].to_numpy(np.int64),
        "y_px": feats["y_px"].to_numpy(), "x_px": feats["x_px"].to_numpy(),
    })
    truth["parent_track_id"] = truth["track_id"].map(parents).fillna(0).astype(np.int64)
    return labels, truth
