"""Segmentation on the GPU vs the CPU of the same machine: speed and mask agreement, one run.

The segment stage (``Cellpose3Backend.segment``, the code of rule
``segment_population``) with the committed demo weights
(``models/demo/target.pth``, the demo config's target settings) segments the
same frames twice, once on the CPU (``--threads`` torch threads) and once on
the GPU, interleaved over ``--rounds``. Two frame sizes:

* ``--size`` (512) px: simulated demo frames with ground-truth masks;
* ``--large`` (2048) px: the same frames tiled (the size docs/cluster.md's
  time estimates are for; no truth).

Printed per size: seconds per frame on each device (median and minimum over
rounds) and their ratio; AP@0.5 of each device's masks against the truth;
agreement of the GPU's masks with the CPU's (AP@0.5 of one against the other,
objects in each, fraction of pixels whose foreground/background call
differs). This measures what docs/reproducibility.md says about GPU runs and
the GPU/CPU speed-up docs/cluster.md quotes.

Needs a CUDA GPU (exits at once without one)::

    python bench/bench_gpu_cpu.py --threads 16 --json bench/results/gpu_cpu.json
    python bench/bench_gpu_cpu.py --frames 4 --large-frames 2 --rounds 1   # quick
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from bench_memory import DEMO_MODEL, demo_config, demo_site, require_cuda
from common import figure, machine_info, write_result


def tile(frames: list[np.ndarray], size: int) -> list[np.ndarray]:
    """Each frame tiled to ``size`` x ``size`` px (no copy of the input kept)."""
    out = []
    for f in frames:
        ky, kx = -(-size // f.shape[0]), -(-size // f.shape[1])
        out.append(np.tile(f, (ky, kx))[:size, :size])
    return out


def agreement(a: list[np.ndarray], b: list[np.ndarray]) -> dict:
    """How far two lists of label images agree: AP@0.5 of b against a, pixels, objects."""
    from livescreen.segment.training import average_precision

    ap = average_precision(a, b)
    fg_diff = float(np.mean([np.mean((x > 0) != (y > 0)) for x, y in zip(a, b, strict=True)]))
    return {"ap50": ap["ap_pooled"], "tp": ap["tp"], "fp": ap["fp"], "fn": ap["fn"],
            "objects_a": int(sum(int(len(np.unique(x))) - 1 for x in a)),
            "objects_b": int(sum(int(len(np.unique(y))) - 1 for y in b)),
            "foreground_pixels_differing": fg_diff,
            "identical_frames": int(sum(np.array_equal(x, y) for x, y in zip(a, b, strict=True)))}


def compare(backends: dict, frames: list[np.ndarray], params, rounds: int,
            truth: list[np.ndarray] | None = None) -> dict:
    """Time each backend's stage on ``frames`` (interleaved rounds); masks compared."""
    from livescreen.segment.training import average_precision

    for be in backends.values():  # warm-up: numba, cuDNN / oneDNN algorithm choice
        list(be.segment(frames[:params.batch_frames], params))
    times: dict[str, list[float]] = {k: [] for k in backends}
    masks: dict[str, list[np.ndarray]] = {}
    for _ in range(rounds):
        for k, be in backends.items():
            t0 = time.perf_counter()
            masks[k] = list(be.segment(frames, params))
            times[k].append((time.perf_counter() - t0) / len(frames))
    med = {k: float(np.median(v)) for k, v in times.items()}
    out = {"frames": len(frames), "size": list(frames[0].shape),
           "median_s_per_frame": med,
           "min_s_per_frame": {k: float(np.min(v)) for k, v in times.items()},
           "times_s_per_frame": times, "cpu_over_gpu": med["cpu"] / med["gpu"],
           "gpu_vs_cpu": agreement(masks["cpu"], masks["gpu"])}
    if truth is not None:
        out["ap50_vs_truth"] = {k: average_precision(truth, m)["ap_pooled"]
                                for k, m in masks.items()}
    return out


def report(r: dict) -> None:
    ly, lx = r["size"]
    med, best, agr = r["median_s_per_frame"], r["min_s_per_frame"], r["gpu_vs_cpu"]
    print(f"{r['frames']} frames of {ly}x{lx} px:")
    for k in ("cpu", "gpu"):
        print(f"  {k}: {med[k]:.3f} s/frame median, {best[k]:.3f} min")
    print(f"  CPU / GPU time: {r['cpu_over_gpu']:.1f}x")
    print(f"  GPU masks vs CPU masks: AP@0.5 {agr['ap50']:.4f} (tp {agr['tp']}, fp {agr['fp']}, "
          f"fn {agr['fn']}), objects {agr['objects_a']} / {agr['objects_b']}, foreground "
          f"pixels differing {100 * agr['foreground_pixels_differing']:.3f} %, identical "
          f"frames {agr['identical_frames']} of {r['frames']}")
    if "ap50_vs_truth" in r:
        t = r["ap50_vs_truth"]
        print(f"  AP@0.5 vs truth: cpu {t['cpu']:.4f}, gpu {t['gpu']:.4f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--large", type=int, default=2048)
    ap.add_argument("--large-frames", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=8, help="torch threads on the CPU")
    ap.add_argument("--batch-frames", type=int, default=8)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    import dataclasses

    from livescreen.segment import eval_params
    from livescreen.segment.cellpose3 import configure_torch, load_model

    gpu = require_cuda()
    machine, t_start = machine_info(), time.perf_counter()
    configure_torch(args.threads)
    cfg = demo_config(DEMO_MODEL, "target", None, args.batch_frames)
    params = dataclasses.replace(eval_params(cfg, "target"), batch_frames=args.batch_frames)
    backends = {"cpu": load_model(DEMO_MODEL, use_gpu=False),
                "gpu": load_model(DEMO_MODEL, use_gpu=True)}
    site = demo_site(max(args.frames, args.large_frames), args.size)
    chan = cfg["imaging"]["channels"]["target"]
    frames = list(site.movie[:args.frames, chan])
    print(f"demo weights {DEMO_MODEL.name}; GPU {gpu}; CPU {machine['cpu_model']}, "
          f"{args.threads} torch threads; batch_frames {args.batch_frames}; rounds {args.rounds}")
    small = compare(backends, frames, params, args.rounds,
                    list(site.labels["target"][:args.frames]))
    report(small)
    large = compare(backends, tile(frames[:args.large_frames], args.large), params,
                    args.rounds)
    report(large)
    figs = [figure(f"GPU vs CPU: stage s/frame ({s['size'][0]}x{s['size'][1]})",
                   f"GPU {s['median_s_per_frame']['gpu']:.3f} s, CPU "
                   f"{s['median_s_per_frame']['cpu']:.3f} s ({args.threads} threads) = "
                   f"{s['cpu_over_gpu']:.1f}x")
            for s in (small, large)]
    agr = small["gpu_vs_cpu"]
    figs.append(figure("GPU vs CPU: masks",
                       f"AP@0.5 GPU vs CPU {agr['ap50']:.4f}, fg pixels differing "
                       f"{100 * agr['foreground_pixels_differing']:.3f} %; AP@0.5 vs truth CPU "
                       f"{small['ap50_vs_truth']['cpu']:.4f}, GPU "
                       f"{small['ap50_vs_truth']['gpu']:.4f}",
                       "AP vs truth differs <= 0.005",
                       abs(small["ap50_vs_truth"]["cpu"] - small["ap50_vs_truth"]["gpu"])
                       <= 0.005))
    if args.json:
        write_result(args.json.stem, machine, {"figures": figs,
                                               "results": {"small": small, "large": large,
                                                           "gpu": gpu}},
                     vars(args) | {"json": str(args.json)}, time.perf_counter() - t_start,
                     path=args.json)


if __name__ == "__main__":
    main()
