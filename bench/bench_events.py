"""Speed of event scoring vs number of object-frames.

    .venv/bin/python bench/bench_events.py [N_FRAMES]

Tiles a simulated demo site (the first site of config/samples.tsv) side by
side, 1 x 1 up to 2 x 5 (10x the objects on a 10x larger field), and times
:func:`livescreen.events.score_labels` (measurements + scoring, tracks tables
given: the work of rule score_events), printing object-frames, seconds, s per
10^5 object-frames and the ratios. Target: 10x the objects in <= 12x the time.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd
import yaml
from common import REPO, figure

TILINGS = ((1, 1), (1, 2), (2, 2), (2, 5))


def tiled(site, k, n_frames):
    """Labels, tracks and movie of ``site`` tiled ky x kx (``k``: int or (ky, kx))."""
    ky, kx = (k, k) if isinstance(k, int) else k
    labs, tracks = {}, {}
    for pop in ("target", "effector"):
        lab = site.labels[pop][:n_frames].astype(np.uint32)
        big = np.zeros((lab.shape[0], lab.shape[1] * ky, lab.shape[2] * kx), np.uint32)
        tt = site.tracks[(site.tracks.population == pop) & (site.tracks.frame < n_frames)]
        parts = []
        off = int(lab.max()) + 1
        for i in range(ky):
            for j in range(kx):
                n = i * kx + j
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
    movie = np.tile(site.movie[:n_frames], (1, 1, ky, kx))
    return labs, tracks, movie


def demo_site():
    from livescreen.simulate import params_for_site, simulate_site, site_seed

    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    sheet = pd.read_csv(REPO / cfg["samples"], sep="\t", dtype=str)
    row = {**sheet.iloc[0].to_dict(), "dose": 0.0}
    site = simulate_site(params_for_site(cfg["simulate"], cfg["imaging"], row),
                         site_seed(cfg["simulate"]["seed"], row["plate"], row["well"],
                                   row["field"]))
    return site, cfg


def measure(n_frames: int = 36, tilings=TILINGS) -> list[dict]:
    """Time score_labels on the demo site tiled as given; one row per tiling."""
    from livescreen.events import event_params, score_labels

    site, cfg = demo_site()
    params = event_params(cfg["events"])
    rows, base = [], None
    print("  tiles  object_frames  seconds  s/1e5 obj-frames  x_objects  x_time", flush=True)
    for k in tilings:
        ky, kx = (k, k) if isinstance(k, int) else k
        labs, tracks, movie = tiled(site, (ky, kx), n_frames)
        t0 = time.perf_counter()
        score_labels(labs["target"], labs["effector"], movie, tracks["target"],
                     tracks["effector"], imaging=cfg["imaging"], params=params, plate="P",
                     well="W", field="1")
        dt = time.perf_counter() - t0
        n = len(tracks["target"]) + len(tracks["effector"])
        base = base or (n, dt)
        row = {"tiles": [ky, kx], "shape": list(labs["target"].shape), "object_frames": n,
               "seconds": dt, "s_per_1e5_object_frames": dt / n * 1e5,
               "x_objects": n / base[0], "x_time": dt / base[1]}
        rows.append(row)
        print(f"  {ky}x{kx}  {n:13d}  {dt:7.2f}  {row['s_per_1e5_object_frames']:16.1f}  "
              f"{row['x_objects']:9.1f}  {row['x_time']:6.1f}", flush=True)
    return rows


def run(quick: bool = False, n_frames: int | None = None) -> dict:
    """Suite entry: 1x and 10x the objects (2 x 5 tiles); quick uses 12 frames."""
    n_frames = n_frames or (12 if quick else 36)
    rows = measure(n_frames, ((1, 1), (2, 5)) if quick else TILINGS)
    one, ten = rows[0], rows[-1]
    scaling = ten["x_time"] / ten["x_objects"] * 10
    figs = [
        figure(f"3 Events: s per 10^5 object-frames ({one['shape'][1]}x{one['shape'][2]} px, "
               f"{n_frames} frames)", f"{one['s_per_1e5_object_frames']:.1f} s at 1x, "
               f"{ten['s_per_1e5_object_frames']:.1f} s at {ten['x_objects']:.0f}x"),
        figure("3 Events: time at 10x objects", f"{ten['x_time']:.1f}x time for "
               f"{ten['x_objects']:.1f}x objects (= {scaling:.1f}x per 10x)",
               "<= 12x time", scaling <= 12),
    ]
    return {"figures": figs, "results": {"frames": n_frames, "rows": rows}}


def main():
    n_frames = int(sys.argv[1]) if len(sys.argv) > 1 else 36
    measure(n_frames)


if __name__ == "__main__":
    main()
