"""Peak RSS of a segment job on a long, large movie: bounded by a few frames, not the movie.

Writes two OME-TIFF movies of the same large frames (the demo simulator's
256 x 256 field tiled to SIZE x SIZE, frames cycled to the length wanted), a
short and a long one, and runs the segment job's library call
(``livescreen.segment.segment_site``: the code of rule ``segment_population``)
on each in a child process with the committed demo weights
(``models/demo/target.pth``, the demo config's settings). The child's peak
RSS is its ``VmHWM`` (Linux' high-water mark of the process, what
``/usr/bin/time -v`` reports as "Maximum resident set size"); the parent's
memory does not count.

If the job held the movie or the label stack, the long movie's peak would
exceed the short one's by (long - short) x (bytes of one frame of movie +
labels). Target: the difference is at most 4 frames' worth.

    .venv/bin/python bench/bench_memory.py                      # 1024 x 1024, 4 vs 20 frames
    .venv/bin/python bench/bench_memory.py --frames 20 200      # the issue's example (~1 h on
                                                                # 2 CPU cores)
    python bench/bench_memory.py --gpu --batch-frames 8 --frames 10 200 \
        --json bench/results/memory_gpu.json                    # on a GPU machine

With ``--gpu`` the job segments on the GPU (it fails if torch sees no CUDA
device) and the child also reports ``torch.cuda.max_memory_allocated`` and
``max_memory_reserved`` (GPU memory must not grow with the movie either).
Without it, the demo config's ``use_gpu`` applies (a GPU if present).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from common import REPO, figure, write_result

DEMO_MODEL = REPO / "models" / "demo" / "target.pth"
CHILD = """
import json, resource, sys, threading, time
sys.path.insert(0, {scripts!r})
import yaml
from livescreen.segment import segment_site

def status():
    d = dict(l.split(':', 1) for l in open('/proc/self/status') if ':' in l)
    return {{k: int(d[k].split()[0]) / 1024 for k in ('VmRSS', 'VmHWM') if k in d}}

trace, done = [], threading.Event()
def sample():  # RSS over the run: a plateau after the first batches = bounded
    while not done.wait(0.25):
        trace.append((time.perf_counter() - t0, status().get('VmRSS')))
cfg = yaml.safe_load(open('config.yaml'))
t0 = time.perf_counter()
threading.Thread(target=sample, daemon=True).start()
summary = segment_site({movie!r}, {model!r}, 'labels.tif', 'qc.parquet', 'montage.png', cfg,
                       {population!r}, threads={threads})
done.set()
hwm = status().get('VmHWM') or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
cuda = {{}}
if str(summary.get('device', '')).startswith('cuda'):
    import torch
    cuda = {{'cuda_max_memory_allocated_mib': torch.cuda.max_memory_allocated() / 2**20,
             'cuda_max_memory_reserved_mib': torch.cuda.max_memory_reserved() / 2**20,
             'gpu': torch.cuda.get_device_name(0)}}
print(json.dumps({{'vmhwm_mib': hwm, 'trace': trace, 'seconds': time.perf_counter() - t0,
                  **summary, **cuda}}))
"""


def demo_config(model: Path = DEMO_MODEL, population: str = "target", gpu: bool | None = None,
                batch_frames: int | None = None) -> dict:
    """The demo config (config/config.yaml) with ``population`` segmented by ``model``.

    ``gpu`` (None: the config's ``use_gpu``) and ``batch_frames`` (None: the
    config's) override ``segment.use_gpu`` and ``segment.batch_frames``.
    """
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["segment"]["populations"][population]["model"] = str(model)
    if gpu is not None:
        cfg["segment"]["use_gpu"] = bool(gpu)
    if batch_frames is not None:
        cfg["segment"]["batch_frames"] = int(batch_frames)
    return cfg


def require_cuda() -> str:
    """Name of the CUDA device torch sees; exits when there is none (``--gpu``)."""
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("--gpu: torch sees no CUDA device")
    return torch.cuda.get_device_name(0)


def demo_site(n_frames: int, size: int, seed: int = 5):
    """A simulated demo site (config/config.yaml) of n_frames x size x size px."""
    from livescreen.simulate import params_for_site, simulate_site

    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    sim = {**cfg["simulate"], "n_frames": n_frames, "height_px": size, "width_px": size}
    sample = {"plate": "bench", "well": "A01", "field": 1, "compound": "none", "dose": 0.0,
              "dose_unit": "uM"}
    return simulate_site(params_for_site(sim, cfg["imaging"], sample), seed)


def write_tiled_movie(path: Path, base: np.ndarray, n_frames: int, size: int, imaging: dict):
    """OME-TIFF of n_frames (C, size, size) frames: ``base`` frames tiled and cycled.

    Frames are written one plane at a time (the whole movie is never in memory).
    """
    import tifffile

    t0, c, by, bx = base.shape
    ky, kx = -(-size // by), -(-size // bx)

    def planes():
        for t in range(n_frames):
            frame = base[t % t0]
            for ch in range(c):
                yield np.tile(frame[ch], (ky, kx))[:size, :size]

    px = float(imaging["pixel_size_um"])
    tifffile.imwrite(path, data=planes(), shape=(n_frames, c, size, size), dtype=base.dtype,
                     ome=True, photometric="minisblack", compression="zlib",
                     metadata={"axes": "TCYX", "PhysicalSizeX": px, "PhysicalSizeY": px,
                               "TimeIncrement": float(imaging["frame_interval_min"]),
                               "TimeIncrementUnit": "min"})


def segment_job_rss(movie: Path, config: dict, model: Path = DEMO_MODEL,
                    population: str = "target", threads: int = 2,
                    workdir: Path | None = None) -> dict:
    """Run ``segment_site`` on ``movie`` in a child process; its peak RSS and summary."""
    with tempfile.TemporaryDirectory(dir=workdir) as d:
        Path(d, "config.yaml").write_text(yaml.safe_dump(config))
        code = CHILD.format(scripts=str(REPO / "workflow" / "scripts"), movie=str(movie),
                            model=str(model), population=population, threads=threads)
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-c", code], cwd=d, capture_output=True, text=True,
                           check=False)
        wall = time.perf_counter() - t0
        if r.returncode:
            raise RuntimeError(f"segment job failed:\n{r.stderr[-3000:]}")
        out = json.loads(r.stdout.strip().splitlines()[-1])
        out["process_wall_s"] = round(wall, 1)
        return out


def trace_tenths(trace: list) -> list[float]:
    """Largest sampled RSS (MiB) in each tenth of the job's run time."""
    if not trace:
        return []
    t = np.array([p[0] for p in trace])
    rss = np.array([p[1] for p in trace], float)
    edges = np.linspace(0, t[-1], 11)
    return [round(float(rss[(t >= a) & (t <= b)].max()), 1) if ((t >= a) & (t <= b)).any()
            else float("nan") for a, b in zip(edges[:-1], edges[1:], strict=True)]


def measure(frames: tuple[int, int] = (4, 20), size: int = 1024, threads: int = 2,
            model: Path = DEMO_MODEL, population: str = "target", gpu: bool | None = None,
            batch_frames: int | None = None) -> dict:
    """Peak RSS (and GPU memory) of segment jobs on a short and a long movie of the same frames.

    ``gpu`` and ``batch_frames`` override the demo config's ``segment.use_gpu``
    and ``segment.batch_frames`` (None: the config's).
    """
    cfg = demo_config(model, population, gpu, batch_frames)
    site = demo_site(min(frames), 256)  # both movies cycle the same frames
    channels = site.movie.shape[1]
    frame_bytes = size * size * (channels * site.movie.dtype.itemsize + 4)  # movie + labels
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench_memory_") as d:
        for n in frames:
            path = Path(d) / f"movie_{n}.ome.tif"
            write_tiled_movie(path, site.movie, n, size, cfg["imaging"])
            r = segment_job_rss(path, cfg, model, population, threads)
            r.update(frames=n, movie_file_mib=round(path.stat().st_size / 2**20, 1),
                     movie_mib=round(n * size * size * channels * site.movie.dtype.itemsize
                                     / 2**20, 1))
            cuda = (f", GPU max allocated {r['cuda_max_memory_allocated_mib']:.0f} MiB, reserved "
                    f"{r['cuda_max_memory_reserved_mib']:.0f} MiB"
                    if "cuda_max_memory_allocated_mib" in r else "")
            print(f"  segment job, {n} frames of {size}x{size} on {r['device']}: peak RSS "
                  f"{r['vmhwm_mib']:.0f} MiB{cuda} ({r['seconds']:.0f} s, {r['s_per_frame']:.2f}"
                  f" s/frame, {r['objects']} objects)", flush=True)
            path.unlink()
            r["rss_by_tenth_of_run_mib"] = trace_tenths(r.pop("trace"))
            print("    its RSS, largest in each tenth of the run (MiB): "
                  + " ".join(f"{v:.0f}" for v in r["rss_by_tenth_of_run_mib"]), flush=True)
            runs.append(r)
    growth = runs[-1]["vmhwm_mib"] - runs[0]["vmhwm_mib"]
    extra = frames[-1] - frames[0]
    tenths = runs[-1]["rss_by_tenth_of_run_mib"]
    # within the long run: a job accumulating data would be higher in the second half
    within = (max(tenths[5:]) - max(tenths[:5])) if len(tenths) == 10 else float("nan")
    out = {}
    if "cuda_max_memory_allocated_mib" in runs[0]:
        out["cuda_growth_mib"] = round(runs[-1]["cuda_max_memory_allocated_mib"]
                                       - runs[0]["cuda_max_memory_allocated_mib"], 1)
    return {"size": size, "threads": threads, "model": str(model), "population": population,
            "device": runs[-1]["device"], "batch_frames": cfg["segment"]["batch_frames"], **out,
            "frame_mib": round(frame_bytes / 2**20, 2), "runs": runs,
            "growth_mib": round(growth, 1),
            "growth_if_unbounded_mib": round(extra * frame_bytes / 2**20, 1),
            "growth_in_frames": round(growth / (frame_bytes / 2**20), 2),
            "long_run_second_half_minus_first_half_mib": round(within, 1),
            "long_run_second_half_if_unbounded_mib": round(frames[-1] / 2 * frame_bytes
                                                           / 2**20, 1)}


def run(quick: bool = False, frames: tuple[int, int] | None = None, size: int | None = None,
        threads: int = 2, gpu: bool | None = None, batch_frames: int | None = None) -> dict:
    """Suite entry: quick = 512 x 512, 4 vs 12 frames; full = 1024 x 1024, 4 vs 20 frames.

    ``gpu`` True segments on the GPU (fails without one) and adds a GPU-memory
    figure; None keeps the demo config's ``use_gpu``. ``batch_frames`` overrides
    the config's ``segment.batch_frames``.
    """
    size = size or (512 if quick else 1024)
    frames = tuple(frames or ((4, 12) if quick else (4, 20)))
    if gpu:
        require_cuda()
    res = measure(frames, size, threads, gpu=gpu, batch_frames=batch_frames)
    short, long_ = res["runs"][0], res["runs"][-1]
    on = "" if res["device"] == "cpu" else f" ({res['device']}, batch_frames {res['batch_frames']})"
    figs = [figure(
        f"6 Memory: peak RSS of a segment job, {size}x{size} px, {frames[0]} vs {frames[1]} "
        f"frames{on}",
        f"{short['vmhwm_mib']:.0f} vs {long_['vmhwm_mib']:.0f} MiB (growth "
        f"{res['growth_mib']:+.0f} MiB = {res['growth_in_frames']:+.1f} frames; a job holding "
        f"movie + labels would add {res['growth_if_unbounded_mib']:.0f} MiB); long job's RSS, "
        f"2nd vs 1st half: {res['long_run_second_half_minus_first_half_mib']:+.0f} MiB "
        f"(unbounded: +{res['long_run_second_half_if_unbounded_mib']:.0f})",
        "growth <= 4 frames", res["growth_in_frames"] <= 4)]
    if "cuda_growth_mib" in res:
        gpu_frame_mib = res["frame_mib"]
        figs.append(figure(
            f"6 Memory: GPU memory of a segment job ({long_.get('gpu')}), {size}x{size} px, "
            f"{frames[0]} vs {frames[1]} frames",
            f"torch.cuda.max_memory_allocated {short['cuda_max_memory_allocated_mib']:.0f} vs "
            f"{long_['cuda_max_memory_allocated_mib']:.0f} MiB (growth "
            f"{res['cuda_growth_mib']:+.0f} MiB); reserved "
            f"{short['cuda_max_memory_reserved_mib']:.0f} vs "
            f"{long_['cuda_max_memory_reserved_mib']:.0f} MiB",
            "growth <= 4 frames", res["cuda_growth_mib"] <= 4 * gpu_frame_mib))
    return {"figures": figs, "results": res}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, nargs=2, default=[4, 20])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gpu", action="store_true",
                    help="segment on the GPU (fails without one); also report GPU memory")
    ap.add_argument("--batch-frames", type=int, default=None,
                    help="frames per network call (default: the demo config's)")
    ap.add_argument("--json", type=Path, default=None,
                    help="write the result document (as bench/results/*.json) here")
    args = ap.parse_args()
    from common import machine_info

    machine, t0 = machine_info(), time.perf_counter()
    out = run(frames=tuple(args.frames), size=args.size, threads=args.threads,
              gpu=True if args.gpu else None, batch_frames=args.batch_frames)
    for f in out["figures"]:
        print(f["figure"], "->", f["value"])
    if args.json:
        options = {"frames": args.frames, "size": args.size, "threads": args.threads,
                   "gpu": args.gpu, "batch_frames": args.batch_frames}
        write_result(args.json.stem, machine, out, options, time.perf_counter() - t0,
                     path=args.json)


if __name__ == "__main__":
    main()
