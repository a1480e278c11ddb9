"""Throughput of the track stage (features + btrack + table) vs object density.

Usage: python bench/bench_track.py [N_FRAMES] [BASE_CELLS]
Default: 100 frames, 300 cells on 1024x1024 px, then 2x and 4x the density.
"""

import logging
import sys
import time

from livescreen.track import track_site
from livescreen.track_eval import link_scores, synthetic_scene
from livescreen.track_models import tracking_params

IMAGING = {"pixel_size_um": 0.65, "frame_interval_min": 4.0, "channels": {"target": 0}}

if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    n_frames = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    base = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    for factor in (1, 2, 4):
        labels, truth = synthetic_scene(n_cells=base * factor, n_frames=n_frames,
                                        shape=(1024, 1024), radius=6, step_px=1.0, seed=factor)
        t0 = time.perf_counter()
        table = track_site(labels, None, tracking_params("effector"), imaging=IMAGING,
                           plate="bench", well="A1", field="1", population="effector")
        dt = time.perf_counter() - t0
        s = link_scores(table, truth)
        print(f"density x{factor}: {len(table) / n_frames:.0f} objects/frame, {len(table)} "
              f"objects, {dt:.1f} s, {len(table) / dt:.0f} objects/s, "
              f"link recall {s['link_recall']:.3f}", flush=True)
