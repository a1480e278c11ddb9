"""One segment job: a site's movie -> label stack, QC table and montage of one population."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from livescreen.imageio import Movie, MovieError, atomic_path

from .backend import EvalParams, SegmentationError
from .qc import SegmentQC, frame_qc, montage_frames, qc_table, save_montage

log = logging.getLogger(__name__)

POPULATIONS = ("target", "effector")

#: Defaults of ``segment:`` (the top level) and of each ``segment.populations.<p>``.
SEGMENT_DEFAULTS: dict[str, Any] = {
    "backend": "cellpose3", "models_dir": "resources/models", "use_gpu": True,
    "batch_frames": 2, "pipeline": True, "montage_frames": 4, "frames_per_job": None,
}
POPULATION_DEFAULTS: dict[str, Any] = {
    "model": "train", "model_diam_mean_px": None, "diameter_um": None,
    "flow_threshold": 0.4, "cellprob_threshold": 0.0, "min_area_um2": 10.0,
    "min_edge_area_um2": None,
    "normalize_percentiles": [1.0, 99.0], "invert": False, "tile_size_px": None,
    "recover_unassigned": False, "join_split_rings": False,
}

#: Gap (um) closed before :func:`~livescreen.segment.postprocess.join_split_rings` measures
#: how ring pieces wrap around an inner cell: the dark rim of the vacuole, blurred by the
#: optics (~1-2 px at 0.65 um/px), lies between the pieces and the inner cell's mask.
JOIN_RINGS_GAP_UM = 1.3


def training_settings(training: Mapping[str, Any]) -> dict[str, Any]:
    """``segment.training`` with defaults (recipe, simulated-frame counts, annotations)."""
    from .training import TRAIN_DEFAULTS

    out = {**TRAIN_DEFAULTS, **{k: v for k, v in training.items()
                                if k not in ("simulate", "annotations")}}
    out["simulate"] = {**SIMULATED_TRAINING_DEFAULTS, **(training.get("simulate") or {})}
    ann = training.get("annotations") or {}
    out["annotations"] = {p: {"train": SIMULATED, "validation": SIMULATED, **(ann.get(p) or {})}
                          for p in POPULATIONS}
    return out


def segment_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``segment:`` section with defaults filled in (populations included).

    Parameters
    ----------
    config : mapping
        The whole workflow config.

    Returns
    -------
    dict
    """
    seg = dict(config.get("segment") or {})
    out = {**SEGMENT_DEFAULTS, **{k: v for k, v in seg.items() if k != "populations"}}
    pops = seg.get("populations") or {}
    out["populations"] = {p: {**POPULATION_DEFAULTS, **(pops.get(p) or {})} for p in POPULATIONS}
    out["training"] = training_settings(seg.get("training") or {})
    if out["backend"] != "cellpose3":
        raise SegmentationError(f"segment.backend '{out['backend']}' is not available; "
                                "only 'cellpose3' is implemented")
    return out


def _area_px(area_um2: float, pixel_size_um: float) -> int:
    """An area in um^2 as a whole number of pixels (>= 0)."""
    return max(0, int(round(float(area_um2) / pixel_size_um**2)))


def eval_params(config: Mapping[str, Any], population: str) -> EvalParams:
    """Cellpose parameters of a population in pixels, from config in physical units.

    Parameters
    ----------
    config : mapping
        The whole workflow config (``imaging.pixel_size_um`` converts units).
    population : {"target", "effector"}

    Returns
    -------
    EvalParams
    """
    if population not in POPULATIONS:
        raise SegmentationError(f"unknown population '{population}' (expected one of "
                                f"{POPULATIONS})")
    px = float(config["imaging"]["pixel_size_um"])
    if not px > 0:
        raise SegmentationError(f"imaging.pixel_size_um must be > 0, got {px}")
    seg = segment_settings(config)
    p = seg["populations"][population]
    lo, hi = (float(v) for v in p["normalize_percentiles"])
    if not 0 <= lo < hi <= 100:
        raise SegmentationError(f"segment.populations.{population}.normalize_percentiles must "
                                f"be 0 <= low < high <= 100, got {p['normalize_percentiles']}")
    diameter = p["diameter_um"]
    return EvalParams(
        diameter_px=None if diameter is None else float(diameter) / px,
        flow_threshold=float(p["flow_threshold"]),
        cellprob_threshold=float(p["cellprob_threshold"]),
        min_size_px=_area_px(p["min_area_um2"], px),
        min_edge_size_px=None if p["min_edge_area_um2"] is None else _area_px(
            p["min_edge_area_um2"], px),
        normalize={"percentile": (lo, hi)}, invert=bool(p["invert"]),
        batch_frames=int(seg["batch_frames"]),
        tile_size_px=None if p["tile_size_px"] is None else int(p["tile_size_px"]),
        recover_unassigned=bool(p["recover_unassigned"]),
        join_rings_gap_px=JOIN_RINGS_GAP_UM / px if p["join_split_rings"] else None)


#: ``segment.training.annotations.<population>.<split>`` value meaning "simulate them".
SIMULATED = "simulated"
SIMULATED_TRAINING_DEFAULTS: dict[str, Any] = {
    "train_sites": 12, "train_frames_per_site": 4,
    "validation_sites": 3, "validation_frames_per_site": 2,
}


def _channel_frames(movie: Movie, channel: int, flags: list, start: int = 0,
                    stop: int | None = None) -> Iterator[np.ndarray]:
    for t in range(start, movie.n_frames if stop is None else stop):
        plane = movie.plane(t, channel)
        flags.append(bool(np.ptp(plane) == 0))
        yield plane


def chunk_ranges(n_frames: int, frames_per_job: int | None) -> list[tuple[int, int]]:
    """Split ``n_frames`` frames into consecutive ``[start, stop)`` ranges of a job each.

    Parameters
    ----------
    n_frames : int
        Frames of the movie (T).
    frames_per_job : int or None
        Frames per segmentation job; None or 0: one range for the whole movie.

    Returns
    -------
    list of (int, int)
        At least one range; the last may be shorter.

    Examples
    --------
    >>> chunk_ranges(10, 4)
    [(0, 4), (4, 8), (8, 10)]
    """
    n_frames = int(n_frames)
    if n_frames < 0:
        raise ValueError(f"n_frames must be >= 0, got {n_frames}")
    if not frames_per_job:
        return [(0, n_frames)]
    if int(frames_per_job) < 1:
        raise ValueError(f"frames_per_job must be >= 1, got {frames_per_job}")
    step = int(frames_per_job)
    return [(a, min(a + step, n_frames)) for a in range(0, max(n_frames, 1), step)]


def segment_site(image: str | PathLike, model_path: str | PathLike, labels_out: str | PathLike,
                 qc_out: str | PathLike, montage_out: str | PathLike | None,
                 config: Mapping[str, Any], population: str, threads: int = 1,
                 provenance: Mapping[str, Any] | None = None,
                 frames: tuple[int, int] | None = None) -> dict:
    """Segment one population of one site (or a range of its frames), streaming frames.

    Writes the (T, Y, X) uint32 label stack (zlib-compressed TIFF, ids 1..n
    per frame), the per-frame QC table and a montage PNG. Memory stays bounded
    by a few frames: frames are read one at a time and label frames are
    written as they are produced. With ``frames``, only that range is
    segmented (one job of a long movie split by ``segment.frames_per_job``;
    :func:`merge_segment_chunks` joins the pieces); the QC table keeps the
    movie's frame numbers.

    Parameters
    ----------
    image : str or path-like
        The site's raw (T, C, Y, X) movie.
    model_path : str or path-like
        Cellpose 3 weights file.
    labels_out, qc_out : str or path-like
        Output files.
    montage_out : str, path-like or None
        Montage PNG; None for none (a frame range of a split movie).
    config : mapping
        The whole workflow config.
    population : {"target", "effector"}
    threads : int, optional
        CPU threads (torch threads).
    provenance : mapping, optional
        Extra provenance for the QC table.
    frames : (int, int), optional
        ``[start, stop)`` frames to segment (clipped to the movie); default all.

    Returns
    -------
    dict
        Summary: frames, objects, seconds, seconds per frame, device.

    Raises
    ------
    SegmentationError
        For a bad model, configuration or image (wrong channel count, ...).
    """
    import tifffile

    from livescreen.tables import write_table

    from .cellpose3 import configure_torch, load_model
    from .models import builtin_diam_mean

    seg = segment_settings(config)
    params = eval_params(config, population)
    pcfg = seg["populations"][population]
    channel = config["imaging"]["channels"][population]
    px = float(config["imaging"]["pixel_size_um"])
    dt = float(config["imaging"]["frame_interval_min"])
    configure_torch(threads)
    try:
        movie = Movie(image)
    except MovieError as err:
        raise SegmentationError(str(err)) from None
    with movie:
        if channel is None or not 0 <= int(channel) < movie.n_channels:
            raise SegmentationError(
                f"{image}: has {movie.n_channels} channel(s) (shape {movie.shape}) but "
                f"imaging.channels.{population} = {channel}; the image does not match the "
                "configured channel layout")
        diam_mean = pcfg["model_diam_mean_px"] or builtin_diam_mean(model_path)
        backend = load_model(model_path, use_gpu=bool(seg["use_gpu"]), diam_mean=diam_mean)
        backend.pipeline = bool(seg["pipeline"])
        n_movie, _, ly, lx = movie.shape
        start, stop = (0, n_movie) if frames is None else frames
        start, stop = max(0, int(start)), min(n_movie, int(stop))
        if frames is not None and start >= stop and n_movie > 0:
            raise SegmentationError(f"{image}: frames {frames} are outside its {n_movie} frames")
        n_t = max(0, stop - start)
        log.info("%s: %s channel %d, frames %d-%d of %d, %dx%d px; diameter %s px, "
                 "rescale %.3f, batch %d, pipeline %s", image, population, channel, start,
                 stop - 1, n_movie, ly, lx,
                 "model's" if params.diameter_px is None else f"{params.diameter_px:.1f}",
                 backend.rescale(params), params.batch_frames, backend.pipeline)
        show = {start + i for i in montage_frames(n_t, int(seg["montage_frames"]))}
        empty_flags: list[bool] = []
        rows, panels = [], []
        t0 = time.perf_counter()

        def labelled() -> Iterator[np.ndarray]:
            planes = _channel_frames(movie, int(channel), empty_flags, start, stop)
            for i, lab in enumerate(backend.segment(planes, params)):
                t = start + i
                rows.append(frame_qc(lab, t, t * dt, px, empty_input=empty_flags[i]))
                if empty_flags[i]:
                    log.warning("frame %d of %s channel %d is constant (e.g. all zero): empty "
                                "labels", t, image, channel)
                if montage_out is not None and t in show:
                    panels.append((t, movie.plane(t, int(channel)), lab))
                if (i + 1) % max(1, n_t // 10) == 0 or i + 1 == n_t:
                    log.info("%d/%d frames, %.2f s/frame", i + 1, n_t,
                             (time.perf_counter() - t0) / (i + 1))
                yield lab

        with atomic_path(labels_out) as tmp:
            # photometric: without it tifffile takes a 3- or 4-frame stack for planar RGB(A)
            tifffile.imwrite(tmp, data=labelled(), shape=(n_t, ly, lx), dtype=np.uint32,
                             compression="zlib", photometric="minisblack",
                             metadata={"axes": "TYX"})
        if len(rows) != n_t:
            raise SegmentationError(f"segmented {len(rows)} of {n_t} frames")
    seconds = time.perf_counter() - t0
    table = qc_table(rows)
    write_table(table, qc_out, SegmentQC, provenance={
        **dict(provenance or {}), "model": str(model_path), "population": population,
        "device": backend.device})
    if montage_out is not None:
        save_montage(montage_out, panels, title=f"{Path(image).parent.name} {population} "
                     f"({Path(model_path).name})")
    summary = {"frames": n_t, "objects": int(table["n_objects"].sum()),
               "seconds": round(seconds, 2), "s_per_frame": round(seconds / max(n_t, 1), 3),
               "device": backend.device}
    log.info("done: %s", summary)
    return summary


def merge_segment_chunks(chunk_labels: Sequence[str | PathLike],
                         chunk_qc: Sequence[str | PathLike], image: str | PathLike,
                         labels_out: str | PathLike, qc_out: str | PathLike,
                         montage_out: str | PathLike, config: Mapping[str, Any],
                         population: str) -> dict:
    """Join the label stacks of a movie segmented in frame ranges into the site's outputs.

    Segmentation is per frame (ids are unique per frame, not across frames),
    so the pieces are concatenated in frame order without relabelling; the
    result equals what one job over the whole movie writes. Frames are
    streamed from the pieces to the output, one at a time.

    Parameters
    ----------
    chunk_labels : sequence of str or path-like
        (t, Y, X) label stacks of consecutive frame ranges, in frame order.
    chunk_qc : sequence of str or path-like
        Their QC tables (movie frame numbers), same order.
    image : str or path-like
        The site's raw movie (for the frame count and the montage).
    labels_out, qc_out, montage_out : str or path-like
        The site's label stack, QC table and montage (as :func:`segment_site`).
    config : mapping
        The whole workflow config.
    population : {"target", "effector"}

    Returns
    -------
    dict
        Summary: frames, pieces, objects.

    Raises
    ------
    SegmentationError
        If the pieces do not cover the movie's frames exactly once, in order,
        or their frame size differs from the movie's.
    """
    import pandas as pd
    import tifffile

    from livescreen.tables import write_table

    if len(chunk_labels) != len(chunk_qc) or not chunk_labels:
        raise SegmentationError(f"{len(chunk_labels)} label pieces but {len(chunk_qc)} QC "
                                "tables to merge")
    seg = segment_settings(config)
    channel = int(config["imaging"]["channels"][population])
    qc = pd.concat([pd.read_parquet(q) for q in chunk_qc], ignore_index=True)
    with Movie(image) as movie:
        n_t, _, ly, lx = movie.shape
        if qc["frame"].tolist() != list(range(n_t)):
            raise SegmentationError(
                f"pieces {[str(c) for c in chunk_labels]} cover frames "
                f"{qc['frame'].min()}-{qc['frame'].max()} ({len(qc)} rows) but {image} has "
                f"{n_t}; rerun the pieces (frames_per_job changed?)")
        show = set(montage_frames(n_t, int(seg["montage_frames"])))
        panels = []

        def frames() -> Iterator[np.ndarray]:
            t = 0
            for piece in chunk_labels:
                with tifffile.TiffFile(piece) as tif:
                    for page in tif.pages:
                        lab = page.asarray()
                        if lab.shape != (ly, lx):
                            raise SegmentationError(f"{piece}: frame {t} is {lab.shape}, the "
                                                    f"movie's frames are {(ly, lx)}")
                        if t in show:
                            panels.append((t, movie.plane(t, channel), lab))
                        t += 1
                        yield lab

        with atomic_path(labels_out) as tmp:
            tifffile.imwrite(tmp, data=frames(), shape=(n_t, ly, lx), dtype=np.uint32,
                             compression="zlib", photometric="minisblack",
                             metadata={"axes": "TYX"})
    write_table(qc_table(qc.to_dict("records")), qc_out, SegmentQC, provenance={
        "population": population, "pieces": [str(c) for c in chunk_labels]})
    save_montage(montage_out, panels, title=f"{Path(image).parent.name} {population} "
                 f"({len(chunk_labels)} jobs)")
    summary = {"frames": n_t, "pieces": len(chunk_labels), "objects": int(qc["n_objects"].sum())}
    log.info("merged: %s", summary)
    return summary
