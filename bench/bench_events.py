"""Speed of event scoring vs number of object-frames.

    python bench/bench_events.py [N_FRAMES]

Tiles a simulated demo site 1x1, 2x2 (... up to ~10x the objects) side by
side and times :func:`livescreen.events.score_labels` (measurements + scoring,
tracks tables given), printing object-frames, seconds and the ratio.
"""

import sys
import time

import numpy as np
import pandas as pd
import yaml

from livescreen.events import event_params, score_labels
from livescreen.simulate import params_for_site, simulate_site, site_seed


def tiled(site, k, n_frames):
    labs, tracks = {}, {}
    for pop in ("target", "effector"):
        lab = site.labels[pop][:n_frames].astype(np.uint32)
        big = np.zeros((lab.shape[0], lab.shape[1] * k, lab.shape[2] * k), np.uint32)
        tt = site.tracks[(site.tracks.population == pop) & (site.tracks.frame < n_frames)]
        parts = []
        off = int(lab.max()) + 1
        for i in range(k):
            for j in range(k):
                n = i * k + j
                sl = (slice(None), slice(i * lab.shape[1], (i + 1) * lab.shape[1]),
                      slice(j * lab.shape[2], (j + 1) * lab.shape[2]))
                big[sl] = np.where(lab > 0, lab + n * off, 0)
                parts.append(tt.assign(track_id=tt.track_id + n * off,
                                       y_px=tt.y_px + i * lab.shape[1],
                                       x_px=tt.x_px + j * lab.shape[2]))
        t = pd.concat(parts, ignore_index=True)
        t = t.assign(touches_border=False, root_track_id=t.track_id,
                     parent_track_id=np.where(t.parent_track_id > 0, t.parent_track_id, 0))
        labs[pop], tracks[pop] = big, t
    movie = np.tile(site.movie[:n_frames], (1, 1, k, k))
    return labs, tracks, movie


def main():
    n_frames = int(sys.argv[1]) if len(sys.argv) > 1 else 36
    cfg = yaml.safe_load(open("config/config.yaml"))
    row = {**pd.read_csv(cfg["samples"], sep="\t", dtype=str).iloc[0].to_dict(), "dose": 0.0}
    site = simulate_site(params_for_site(cfg["simulate"], cfg["imaging"], row),
                         site_seed(cfg["simulate"]["seed"], row["plate"], row["well"],
                                   row["field"]))
    params = event_params(cfg["events"])
    base = None
    print("tiles  object_frames  seconds  x_objects  x_time")
    for k in (1, 2, 3):
        labs, tracks, movie = tiled(site, k, n_frames)
        t0 = time.perf_counter()
        score_labels(labs["target"], labs["effector"], movie, tracks["target"],
                     tracks["effector"], imaging=cfg["imaging"], params=params, plate="P",
                     well="W", field="1")
        dt = time.perf_counter() - t0
        n = len(tracks["target"]) + len(tracks["effector"])
        base = base or (n, dt)
        print(f"{k}x{k}  {n:13d}  {dt:7.2f}  {n / base[0]:9.1f}  {dt / base[1]:6.1f}")


if __name__ == "__main__":
    main()
