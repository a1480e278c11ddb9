"""Throughput and accuracy of the track stage (btrack) vs trackpy on the same detections.

A synthetic site (``livescreen.track_eval.synthetic_scene``: discs doing
persistent random walks on 1024 x 1024 px; label value = ground-truth track
id) is tracked

* by the track stage (``livescreen.track.track_site``: features, btrack, tables),
* by its linking step alone (``link_objects``: btrack + overlap repair + divisions),
* by trackpy's ``link`` (a tracker users pick instead) on the same detections
  (the stage's per-object features), with the same physical settings: search
  range = the stage's search radius (``max_speed_um_per_min * dt / px``),
  memory = the stage's ``max_lost`` frames.

Accuracy beside speed: link recall / precision against the ground truth
(``livescreen.track_eval.link_scores``). The scene has no divisions:
``synthetic_scene``'s daughters are as large as their mother, which the stage's
division check rejects by design (mitosis halves a cell); division accuracy on
the project simulator's movies is measured by ``bench/track_accuracy.py``. trackpy is a
benchmark-only dependency (``requirements/bench.txt``); it is installed with
``pip --no-deps`` when missing.

Usage::

    .venv/bin/python bench/bench_track.py [N_FRAMES] [BASE_CELLS]

Default: 100 frames, 300 cells on 1024 x 1024 px, then 2x and 4x the density.
"""

from __future__ import annotations

import importlib
import logging
import subprocess
import sys
import time

import pandas as pd
from common import REPO, figure

IMAGING = {"pixel_size_um": 0.65, "frame_interval_min": 4.0, "channels": {"target": 0}}
BENCH_REQUIREMENTS = REPO / "requirements" / "bench.txt"


def ensure_trackpy() -> str | None:
    """Import trackpy, installing requirements/bench.txt (pip --no-deps) if missing.

    Returns the version, or None when it cannot be installed (the comparison is
    then skipped, with the reason printed).
    """
    try:
        import trackpy
        return trackpy.__version__
    except ImportError:
        pass
    print(f"trackpy (the second tracker of the tracking benchmark) is not installed: "
          f"installing {BENCH_REQUIREMENTS.relative_to(REPO)} with "
          f"`{sys.executable} -m pip install --no-deps -r ...`", flush=True)
    res = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-r",
                          str(BENCH_REQUIREMENTS)], capture_output=True, text=True, check=False)
    if res.returncode:
        print(f"could not install trackpy (skipping the comparison):\n{res.stderr[-2000:]}")
        return None
    check = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True,
                           text=True, check=False)
    if check.returncode:
        print(f"warning: pip check after installing trackpy:\n{check.stdout[-2000:]}")
    importlib.invalidate_caches()
    import trackpy
    return trackpy.__version__


def scene(n_cells: int, n_frames: int, seed: int, p_divide: float = 0.0):
    from livescreen.track_eval import synthetic_scene

    return synthetic_scene(n_cells=n_cells, n_frames=n_frames, shape=(1024, 1024), radius=6,
                           step_px=1.0, p_divide=p_divide, seed=seed)


def trackpy_link(features: pd.DataFrame, search_range_px: float, memory: int) -> pd.DataFrame:
    """trackpy.link on the stage's features -> a table ``link_scores`` reads."""
    import trackpy

    trackpy.quiet()
    df = features[["frame", "label_id", "y_px", "x_px"]].rename(columns={"y_px": "y",
                                                                         "x_px": "x"})
    linked = trackpy.link(df, search_range=search_range_px, memory=memory,
                          pos_columns=["y", "x"], t_column="frame")
    return pd.DataFrame({"track_id": linked["particle"].to_numpy() + 1,
                         "frame": linked["frame"].to_numpy(),
                         "label_id": linked["label_id"].to_numpy(), "parent_track_id": 0})


def compare(n_cells: int, n_frames: int, population: str = "target", seed: int = 1,
            second: bool = True) -> dict:
    """Time and score the stage, its linking step and trackpy on one synthetic site."""
    from livescreen.features import object_features
    from livescreen.track import frame_overlaps, link_objects, track_site
    from livescreen.track_eval import link_scores
    from livescreen.track_models import btrack_config, max_lost_frames, tracking_params

    params = tracking_params(population)
    labels, truth = scene(n_cells, n_frames, seed)
    px, dt = IMAGING["pixel_size_um"], IMAGING["frame_interval_min"]
    out: dict = {"cells": n_cells, "frames": n_frames, "population": population}
    t0 = time.perf_counter()
    table = track_site(labels, None, params, imaging=IMAGING, plate="bench", well="A1",
                       field="1", population=population)
    out["stage_s"] = time.perf_counter() - t0
    out["objects"] = n = len(table)
    out["stage"] = link_scores(table, truth)
    t0 = time.perf_counter()
    feats = object_features(labels)
    out["features_s"] = time.perf_counter() - t0
    overlaps = frame_overlaps(labels)
    t0 = time.perf_counter()
    link_objects(feats, params, px, dt, labels.shape[1:], overlaps=overlaps)
    out["btrack_link_s"] = time.perf_counter() - t0
    cfg = btrack_config(params, px, dt, labels.shape[1:])
    search = float(cfg.max_search_radius)
    memory = max_lost_frames(params, dt)
    out.update(search_range_px=search, memory_frames=memory)
    if second:
        trackpy_link(feats.head(200), search, memory)  # warm-up (numba compilation)
        t0 = time.perf_counter()
        tp_table = trackpy_link(feats, search, memory)
        out["trackpy_link_s"] = time.perf_counter() - t0
        out["trackpy"] = link_scores(tp_table, truth)
    for k in ("stage_s", "btrack_link_s", "trackpy_link_s"):
        if k in out:
            out[k.replace("_s", "_objects_per_s")] = n / out[k]
    if "trackpy_link_s" in out:
        out["features_plus_trackpy_objects_per_s"] = n / (out["features_s"]
                                                          + out["trackpy_link_s"])
    return out


def print_row(r: dict) -> None:
    s = r["stage"]
    line = (f"  {r['cells']} cells x {r['frames']} frames ({r['objects']} objects): stage "
            f"{r['stage_s']:.1f} s = {r['stage_objects_per_s']:.0f} obj/s (features "
            f"{r['features_s']:.1f} s; btrack linking alone {r['btrack_link_s']:.1f} s = "
            f"{r['btrack_link_objects_per_s']:.0f} obj/s), link recall {s['link_recall']:.4f}, "
            f"precision {s['link_precision']:.4f}")
    if "trackpy" in r:
        t = r["trackpy"]
        line += (f"\n  {'':>10}trackpy link {r['trackpy_link_s']:.1f} s = "
                 f"{r['trackpy_link_objects_per_s']:.0f} obj/s (with features "
                 f"{r['features_plus_trackpy_objects_per_s']:.0f} obj/s), link recall "
                 f"{t['link_recall']:.4f}, precision {t['link_precision']:.4f}")
    print(line, flush=True)


def run(quick: bool = False, n_frames: int | None = None,
        cells: tuple[int, ...] | None = None) -> dict:
    """Suite entry: quick = 300 cells x 50 frames; full = 300 and 1,200 cells x 100 frames."""
    n_frames = n_frames or (50 if quick else 100)
    cells = cells or ((300,) if quick else (300, 1200))
    version = ensure_trackpy()
    rows = []
    for i, n in enumerate(cells):
        r = compare(n, n_frames, seed=i + 1, second=version is not None)
        print_row(r)
        rows.append(r)
    figs = []
    for r in rows:
        s = r["stage"]
        value = (f"btrack stage {r['stage_objects_per_s']:.0f} obj/s (its linking step "
                 f"{r['btrack_link_objects_per_s']:.0f}), link recall/precision "
                 f"{s['link_recall']:.3f}/{s['link_precision']:.3f}; ")
        if "trackpy" in r:
            t = r["trackpy"]
            value += (f"trackpy link {r['trackpy_link_objects_per_s']:.0f} obj/s (with the "
                      f"same features {r['features_plus_trackpy_objects_per_s']:.0f}), "
                      f"{t['link_recall']:.3f}/{t['link_precision']:.3f}")
        else:
            value += "trackpy not available"
        figs.append(figure(f"2 Tracking: {r['objects'] // r['frames']} objects/frame x "
                           f"{r['frames']} frames", value, "- (no target; accuracy beside speed)"))
    return {"figures": figs, "results": {"trackpy_version": version, "imaging": IMAGING,
                                         "sites": rows}}


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    n_frames = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    base = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    version = ensure_trackpy()
    for i, factor in enumerate((1, 2, 4)):
        print(f"density x{factor}:")
        print_row(compare(base * factor, n_frames, seed=i + 1, second=version is not None))


if __name__ == "__main__":
    main()
