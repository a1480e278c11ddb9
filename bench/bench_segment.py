"""Speed and memory of the segment stage, measured in one run.

Prints seconds per frame of

* the stage (``Cellpose3Backend.segment``: untiled, batched, pipelined),
* Cellpose's tuned ``eval`` (one tile per frame; the masks the stage must equal),
* Cellpose's default ``eval`` (224-px tiles, 10 % overlap),
* the bare network forward pass (prepared frame -> network output; the floor),

on the same frames, interleaved over rounds (the machine may be shared: medians
and minima are both shown), then whether the stage's masks equal the tuned
eval's, and the peak RSS of a whole segment job (subprocess) on a short and a
long movie (memory must not grow with the number of frames).

Usage::

    .venv/bin/python bench/bench_segment.py                 # real frames if ../shared/realdata
    .venv/bin/python bench/bench_segment.py --frames 6 --rounds 3 --threads 2
    .venv/bin/python bench/bench_segment.py --model resources/models/trained/target.pth \\
        --source simulated
    # the suite's figure (demo weights, simulated frames with truth) on a GPU machine:
    python bench/bench_segment.py --demo --gpu --batch-frames 8 --frames 16 \\
        --json bench/results/segment_gpu.json

``--gpu`` runs every method on the GPU (it fails if torch sees no CUDA device);
the peak-RSS jobs then also report ``torch.cuda.max_memory_allocated``. Without
it, ``--demo`` keeps the suite's behaviour (the workflow's ``use_gpu`` default:
a GPU if present) and the other modes use the CPU.

``--import-time`` only times, in fresh processes interleaved over rounds, the
import of ``cellpose.models`` as plain ``import`` (numba compiles
``cellpose.dynamics``' kernels) and through
``livescreen.segment.cellpose3.import_cellpose`` (kernels from numba's cache,
warmed once first): the start-up every segment job pays.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))
REAL = REPO.parent / "shared" / "realdata"
CYTO = REAL / "cellpose-cyto-v0" / "cyto_v0.pth"
GOWT1 = REAL / "ctc-Fluo-N2DH-GOWT1" / "01"


def real_frames(n, size):
    import tifffile

    out = []
    for t in range(1, 1 + n):
        img = tifffile.imread(GOWT1 / f"t{t:03d}.tif")
        y0 = (img.shape[0] - size) // 2
        out.append(img[y0:y0 + size, y0:y0 + size])
    return out


def simulated_movie(n, size, seed=5):
    import yaml

    from livescreen.simulate import params_for_site, simulate_site

    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    sim = {**cfg["simulate"], "n_frames": n, "height_px": size, "width_px": size}
    sample = {"plate": "bench", "well": "A01", "field": 1, "compound": "none", "dose": 0.0,
              "dose_unit": "uM"}
    return simulate_site(params_for_site(sim, cfg["imaging"], sample), seed).movie, cfg


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def child_peak_rss(model, n_frames, size, threads, diam_mean, gpu=False, batch_frames=2):
    """Run a whole segment job in a subprocess; return its peak RSS (VmHWM) in MiB.

    The movie is simulated and written by this process first, so the child's
    peak is the segment job's alone. With ``gpu`` the job runs on the GPU and
    the return value is a dict: ``vmhwm_mib`` and ``cuda_max_memory_allocated_mib``.
    """
    from livescreen.imageio import write_movie

    code = f"""
import sys, resource, yaml
sys.path.insert(0, {str(REPO / 'workflow' / 'scripts')!r})
from livescreen.segment import segment_site
cfg = yaml.safe_load(open({str(REPO / 'config' / 'config.yaml')!r}))
cfg['segment'] = {{'populations': {{'target': {{'model_diam_mean_px': {diam_mean}}}}},
                  'use_gpu': {bool(gpu)}, 'batch_frames': {int(batch_frames)}}}
segment_site('m.ome.tif', {str(model)!r}, 'l.tif', 'q.parquet', 'm.png', cfg, 'target',
             threads={threads})
# VmHWM: peak RSS of this process image (ru_maxrss would include the parent's: Linux
# keeps it across fork + exec)
hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')]
print(int(hwm[0].split()[1]) / 1024 if hwm else
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
if {bool(gpu)}:
    import torch
    print(torch.cuda.max_memory_allocated() / 2**20)
"""
    with tempfile.TemporaryDirectory() as d:
        movie, cfg = simulated_movie(n_frames, size)
        write_movie(Path(d) / "m.ome.tif", movie, cfg["imaging"]["pixel_size_um"], 4.0)
        del movie
        r = subprocess.run([sys.executable, "-c", code], cwd=d, capture_output=True, text=True,
                           check=False)
        if r.returncode:
            return f"failed: {r.stderr.strip().splitlines()[-1]}"
        lines = r.stdout.strip().splitlines()
        if gpu:
            return {"vmhwm_mib": float(lines[-2]),
                    "cuda_max_memory_allocated_mib": float(lines[-1])}
        return float(lines[-1])


def rss_text(v) -> str:
    """A child_peak_rss result as text."""
    if isinstance(v, str):
        return v
    if isinstance(v, dict):
        return (f"{v['vmhwm_mib']:.0f} MiB (GPU max allocated "
                f"{v['cuda_max_memory_allocated_mib']:.0f} MiB)")
    return f"{v:.0f} MiB"


def compare_methods(backend, frames, params, rounds: int, truth=None) -> dict:
    """Time the stage, tuned eval, default eval and forward pass on the same frames.

    The methods are interleaved over ``rounds`` (a shared machine's load hits
    them alike). Masks: the stage's vs the tuned eval's (must be identical),
    agreement with the default eval, and AP@0.5 of each against ``truth`` when
    given (a list of ground-truth label images).
    """
    from livescreen.segment.training import average_precision

    prepared = [backend.prepare(f, params) for f in frames]
    n = len(frames)
    methods = {
        "stage": lambda: list(backend.segment(frames, params)),
        "tuned_eval": lambda: [backend.reference_eval(f, params) for f in frames],
        "default_eval": lambda: [backend.reference_eval(f, params, tuned=False)
                                 for f in frames],
        "forward": lambda: [backend.forward_only(x, params) for x in prepared],
    }
    methods["stage"]()  # warm-up: numba compilation, oneDNN primitives
    methods["forward"]()
    times = {k: [] for k in methods}
    outs = {}
    for _ in range(rounds):
        for k, fn in methods.items():
            dt, outs[k] = timed(fn)
            times[k].append(dt / n)
    med = {k: float(np.median(v)) for k, v in times.items()}
    best = {k: float(np.min(v)) for k, v in times.items()}
    identical = all(np.array_equal(a, b) for a, b in zip(outs["stage"], outs["tuned_eval"],
                                                         strict=True))
    out = {"median_s_per_frame": med, "min_s_per_frame": best, "times_s_per_frame": times,
           "stage_over_forward": med["stage"] / med["forward"],
           "identical": identical, "frames": n,
           "objects": int(sum(int(m.max()) for m in outs["stage"])),
           "agreement_with_default_eval_ap50": average_precision(
               outs["default_eval"], outs["stage"])["ap_mean"]}
    if truth is not None:
        out["ap50_vs_truth"] = {k: average_precision(truth, outs[k])["ap_pooled"]
                                for k in ("stage", "tuned_eval", "default_eval")}
    return out


def print_comparison(r: dict) -> None:
    med, best = r["median_s_per_frame"], r["min_s_per_frame"]
    print(f"{'method':<14}{'s/frame median':>16}{'s/frame min':>13}{'x forward':>11}")
    for k in med:
        print(f"{k:<14}{med[k]:>16.3f}{best[k]:>13.3f}{med[k] / med['forward']:>11.2f}")
    print(f"stage masks identical to tuned eval: {r['identical']} ({r['objects']} objects)")
    print(f"stage vs default eval: AP@0.5 of agreement {r['agreement_with_default_eval_ap50']:.3f}")
    if "ap50_vs_truth" in r:
        print("AP@0.5 vs ground truth: " + ", ".join(f"{k} {v:.4f}"
                                                    for k, v in r["ap50_vs_truth"].items()))


def run(quick: bool = False, size: int = 512, frames: int | None = None,
        rounds: int | None = None, threads: int = 2, gpu: bool | None = None,
        batch_frames: int | None = None) -> dict:
    """Suite entry: the demo weights (models/demo/target.pth) on simulated demo frames.

    The frames are the demo simulator's (config/config.yaml) at ``size`` px,
    with ground-truth masks, segmented with the demo config's target settings
    (``eval_params``: what rule segment_population uses). Also the peak RSS of
    a whole segment job (child process) on a movie of the same frames (and its
    ``torch.cuda.max_memory_allocated`` on a GPU).

    ``gpu``: None = the workflow's default (a GPU if present), True = the GPU
    (fails without one), False = the CPU. ``batch_frames`` overrides the demo
    config's ``segment.batch_frames`` (frames per network call).
    """
    import dataclasses

    from bench_memory import (
        DEMO_MODEL,
        demo_config,
        demo_site,
        require_cuda,
        segment_job_rss,
        write_tiled_movie,
    )
    from common import figure

    from livescreen.segment import eval_params
    from livescreen.segment.cellpose3 import configure_torch, load_model, padded_size

    frames_n = frames or (2 if quick else 4)
    rounds = rounds or (1 if quick else 3)
    if gpu:
        require_cuda()
    configure_torch(threads)
    cfg = demo_config(DEMO_MODEL, "target", gpu, batch_frames)
    params = eval_params(cfg, "target")
    site = demo_site(max(frames_n, 6), size)
    chan = cfg["imaging"]["channels"]["target"]
    frames_ = list(site.movie[:frames_n, chan])
    truth = list(site.labels["target"][:frames_n])
    # the workflow's default (use_gpu: true): GPU if present
    backend = load_model(DEMO_MODEL, use_gpu=True if gpu is None else gpu)
    if batch_frames is not None:
        params = dataclasses.replace(params, batch_frames=int(batch_frames))
    r = compare_methods(backend, frames_, params, rounds, truth)
    ly, lx = frames_[0].shape
    rs = backend.rescale(params)
    r.update(size=[ly, lx], network_input=list(padded_size(int(ly * rs), int(lx * rs))),
             rescale=rs, threads=threads, rounds=rounds, device=backend.device,
             model=str(DEMO_MODEL), batch_frames=params.batch_frames)
    on_gpu = backend.device.startswith("cuda")
    if on_gpu:
        import torch

        r["gpu"] = torch.cuda.get_device_name(0)
        r["cuda_max_memory_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    print(f"  demo weights, simulated frames {frames_n} x {ly}x{lx} px (network input "
          f"{r['network_input']}), device {backend.device}{' ' + r['gpu'] if on_gpu else ''}, "
          f"{threads} threads, batch_frames {params.batch_frames}, rounds {rounds}")
    print_comparison(r)
    job_frames = max(6, 2 * params.batch_frames)
    with tempfile.TemporaryDirectory(prefix="bench_segment_") as d:
        movie = Path(d) / "movie.ome.tif"
        write_tiled_movie(movie, site.movie, job_frames, size, cfg["imaging"])
        job = segment_job_rss(movie, cfg, DEMO_MODEL, "target", threads)
    r["segment_job"] = job
    cuda = (f", GPU max allocated {job['cuda_max_memory_allocated_mib']:.0f} MiB"
            if "cuda_max_memory_allocated_mib" in job else "")
    print(f"  segment job ({job_frames} frames of {size}x{size}, {job['device']}): peak RSS "
          f"{job['vmhwm_mib']:.0f} MiB{cuda}, {job['s_per_frame']:.3f} s/frame")
    med = r["median_s_per_frame"]
    ratio = r["stage_over_forward"]
    ap = r["ap50_vs_truth"]
    ap_diff = ap["stage"] - ap["default_eval"]
    figs = [
        figure(f"1 Segmentation: stage s/frame ({ly}x{lx}, {backend.device})",
               f"{med['stage']:.3f} s = {ratio:.2f}x forward ({med['forward']:.3f} s); "
               f"Cellpose default eval {med['default_eval']:.3f} s = "
               f"{med['default_eval'] / med['forward']:.2f}x",
               "<= 1.3x forward (CPU)", None if on_gpu else ratio <= 1.3,
               "GPU: reported only (the target is for the CPU)" if on_gpu else ""),
        figure("1 Segmentation: masks vs Cellpose eval",
               f"identical to tuned eval: {'yes' if r['identical'] else 'no'}; AP@0.5 vs truth "
               f"stage {ap['stage']:.3f}, default eval {ap['default_eval']:.3f} "
               f"(diff {ap_diff:+.3f})",
               "identical, or AP diff <= 0.005",
               r["identical"] or abs(ap_diff) <= 0.005),
        figure("1 Segmentation: peak RSS of a segment job",
               f"{job['vmhwm_mib']:.0f} MiB{cuda} ({job_frames} frames of {size}x{size})"),
    ]
    return {"figures": figs, "results": r}


_IMPORTS = {
    "plain import cellpose.models": "import cellpose.models",
    "import_cellpose() first": ("import sys; sys.path.insert(0, {scripts!r}); "
                                "from livescreen.segment.cellpose3 import import_cellpose; "
                                "import_cellpose(); import cellpose.models"),
}


def import_times(rounds: int) -> dict[str, list[float]]:
    """Wall seconds of each way of importing Cellpose, each in a fresh process.

    Parameters
    ----------
    rounds : int
        Interleaved rounds (after one untimed warm-up of numba's cache).

    Returns
    -------
    dict
        Label -> seconds per round.
    """
    code = {k: v.format(scripts=str(REPO / "workflow" / "scripts")) for k, v in _IMPORTS.items()}
    subprocess.run([sys.executable, "-c", code["import_cellpose() first"]], check=True)
    out: dict[str, list[float]] = {k: [] for k in code}
    for _ in range(rounds):
        for k, c in code.items():
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", c], check=True)
            out[k].append(time.perf_counter() - t0)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=None,
                    help="Cellpose 3 weights (default: realdata cyto_v0)")
    ap.add_argument("--source", choices=["real", "simulated"], default=None)
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-frames", type=int, default=2)
    ap.add_argument("--diameter-px", type=float, default=None)
    ap.add_argument("--rss-frames", type=int, nargs=2, default=[8, 32],
                    help="movie lengths for the peak-RSS check (0 0 skips it)")
    ap.add_argument("--json", type=Path, default=None, help="also write results here")
    ap.add_argument("--rss-only", action="store_true", help="only the peak-RSS check")
    ap.add_argument("--gpu", action="store_true",
                    help="run on the GPU (fails if torch sees no CUDA device)")
    ap.add_argument("--demo", action="store_true",
                    help="the suite's figure (run()): demo weights on simulated frames with "
                         "ground truth; --json then writes the suite's result document")
    ap.add_argument("--import-time", action="store_true",
                    help="only time Cellpose's import, plain vs import_cellpose() (rounds)")
    args = ap.parse_args()
    if args.import_time:
        for k, v in import_times(args.rounds).items():
            print(f"{k:<32} median {np.median(v):.2f} s, min {min(v):.2f} s "
                  f"({args.rounds} fresh processes)")
        return

    from livescreen.segment.backend import EvalParams
    from livescreen.segment.cellpose3 import configure_torch, load_model, padded_size

    if args.gpu:
        from bench_memory import require_cuda

        require_cuda()
    if args.demo:
        from common import machine_info, write_result

        machine, t0 = machine_info(), time.perf_counter()
        out = run(size=args.size, frames=args.frames, rounds=args.rounds, threads=args.threads,
                  gpu=True if args.gpu else None, batch_frames=args.batch_frames)
        for f in out["figures"]:
            print(f"{f['figure']} -> {f['value']}")
        if args.json:
            options = {"demo": True, "gpu": args.gpu, "size": args.size, "frames": args.frames,
                       "rounds": args.rounds, "threads": args.threads,
                       "batch_frames": args.batch_frames}
            write_result(args.json.stem, machine, out, options, time.perf_counter() - t0,
                         path=args.json)
        return
    configure_torch(args.threads)
    model = args.model or CYTO
    if args.rss_only:
        for t in args.rss_frames:
            v = child_peak_rss(model, t, args.size, args.threads,
                               27.0 if model == CYTO else "None", args.gpu, args.batch_frames)
            print(f"peak RSS of a segment job, {t} frames of {args.size}x{args.size}: "
                  f"{rss_text(v)}")
        return
    source = args.source or ("real" if GOWT1.is_dir() else "simulated")
    diam_mean = 27.0 if model == CYTO else None
    if not model.is_file():
        sys.exit(f"model {model} not found: pass --model (e.g. a trained model from "
                 "resources/models/trained/)")
    frames = (real_frames(args.frames, args.size) if source == "real"
              else list(simulated_movie(args.frames, args.size)[0][:, 0]))
    backend = load_model(model, diam_mean=diam_mean, use_gpu=args.gpu)
    diameter = args.diameter_px or (27.0 if model == CYTO else None)
    params = EvalParams(diameter_px=diameter, batch_frames=args.batch_frames)
    r = compare_methods(backend, frames, params, args.rounds)
    n = len(frames)
    ly, lx = frames[0].shape
    rs = backend.rescale(params)
    net_in = padded_size(int(ly * rs), int(lx * rs))
    print(f"model {model.name}, {source} frames: {n} x {ly}x{lx} px (network input {net_in}), "
          f"device {backend.device}, {args.threads} torch threads, batch_frames "
          f"{args.batch_frames}, rounds {args.rounds}")
    print_comparison(r)
    result = {**r, "size": [ly, lx], "threads": args.threads, "source": source,
              "model": str(model), "device": backend.device}
    if args.rss_frames[0] > 0:
        rss = {t: child_peak_rss(model, t, args.size, args.threads, diam_mean or "None",
                                 args.gpu, args.batch_frames)
               for t in args.rss_frames}
        for t, v in rss.items():
            print(f"peak RSS of a segment job, {t} frames of {args.size}x{args.size}: "
                  f"{rss_text(v)}")
        result["peak_rss_mib"] = rss
    print(f"(this process: peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}"
          " MiB)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
