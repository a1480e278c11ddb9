"""Training Cellpose 3 models for the workflow (``model: train``).

Annotated frames are (image, mask) pairs of 2D TIFFs. For the demo they are
simulated (:func:`simulate_training_set`) with seeds that differ from every
screen site's, so the model never sees the frames it will segment. Training
itself is Cellpose's own ``cellpose.train.train_seg``; this module only
prepares data, fixes the random seeds and records what was done.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from .backend import EvalParams, SegmentationError
from .cellpose3 import import_cellpose

log = logging.getLogger(__name__)

#: File-name suffixes of a training folder: ``NNN_img.tif`` + ``NNN_masks.tif``.
IMAGE_SUFFIX, MASK_SUFFIX = "_img.tif", "_masks.tif"

#: Defaults of ``segment.training`` (see config/README.md).
TRAIN_DEFAULTS: dict[str, Any] = {
    "n_epochs": 400,
    "learning_rate": 0.1,
    "weight_decay": 1e-5,
    "sgd": True,
    "batch_size": 8,
    "crop_px": 64,
    "diam_mean_px": None,
    "nimg_per_epoch": 8,
    "min_train_masks": 1,
    "seed": 0,
    "initial_model": None,
}

#: Training diameter (px) of a network trained from scratch when ``diam_mean_px`` is null.
SCRATCH_DIAM_MEAN_PX = 17.0

#: Offset added to the simulator's base seed for training / validation sites, far
#: from any screen site's seed (those come from plate/well/field hashes).
_SPLIT_SEED = {"train": 1_000_003, "validation": 2_000_029}


def simulate_training_set(sim_cfg: Mapping[str, Any], imaging: Mapping[str, Any],
                          population: str, split: str, n_sites: int,
                          frames_per_site: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Simulate annotated frames (image, ground-truth mask) for one population.

    Parameters
    ----------
    sim_cfg : mapping
        The ``simulate:`` config section (the screen's own simulation settings).
    imaging : mapping
        The ``imaging:`` section (pixel size, frame interval, channel roles).
    population : {"target", "effector"}
    split : {"train", "validation"}
        Selects disjoint seeds, none equal to a screen site's.
    n_sites : int
        Independent simulated fields.
    frames_per_site : int
        Frames taken per field, spread evenly over the movie.

    Returns
    -------
    images, masks : list of numpy.ndarray
        (Y, X) uint16 images of the population's channel and uint32 masks.
    """
    from livescreen.simulate import params_for_site, simulate_site

    if population not in ("target", "effector"):
        raise SegmentationError(f"unknown population '{population}'")
    if split not in _SPLIT_SEED:
        raise SegmentationError(f"split must be one of {sorted(_SPLIT_SEED)}, got '{split}'")
    if n_sites < 1 or frames_per_site < 1:
        raise SegmentationError("n_sites and frames_per_site must be >= 1")
    channel = int(imaging["channels"][population])
    base = int(sim_cfg.get("seed", 0)) + _SPLIT_SEED[split]
    images, masks = [], []
    for i in range(n_sites):
        sample = {"plate": f"{split}", "well": f"S{i:03d}", "field": 1, "compound": "none",
                  "dose": 0.0, "dose_unit": "uM"}
        site = simulate_site(params_for_site(sim_cfg, imaging, sample), base + 7919 * i)
        n_t = site.movie.shape[0]
        for t in np.unique(np.linspace(0, n_t - 1, frames_per_site).round().astype(int)):
            images.append(np.array(site.movie[t, channel]))
            masks.append(np.array(site.labels[population][t], dtype=np.uint32))
    return images, masks


def write_training_set(out_dir: str | PathLike, images: Sequence[np.ndarray],
                       masks: Sequence[np.ndarray]) -> list[Path]:
    """Write pairs as ``NNN_img.tif`` / ``NNN_masks.tif`` into ``out_dir``.

    Returns
    -------
    list of pathlib.Path
        The image files written.
    """
    import tifffile

    if len(images) != len(masks):
        raise SegmentationError(f"{len(images)} images but {len(masks)} masks")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i, (img, msk) in enumerate(zip(images, masks, strict=True)):
        if np.shape(img) != np.shape(msk):
            raise SegmentationError(f"pair {i}: image {np.shape(img)} and mask "
                                    f"{np.shape(msk)} differ in shape")
        tifffile.imwrite(out / f"{i:03d}{IMAGE_SUFFIX}", np.asarray(img), compression="zlib")
        tifffile.imwrite(out / f"{i:03d}{MASK_SUFFIX}", np.asarray(msk, np.uint32),
                         compression="zlib")
        written.append(out / f"{i:03d}{IMAGE_SUFFIX}")
    return written


def list_pairs(source: str | PathLike | Sequence[Mapping[str, str]]) -> list[tuple[Path, Path]]:
    """(image, mask) paths of a training folder or of a config list of pairs.

    Parameters
    ----------
    source : str, path-like or sequence of mappings
        A folder holding ``*_img.tif`` + ``*_masks.tif`` files, or a list of
        ``{"image": ..., "mask": ...}``.

    Returns
    -------
    list of (pathlib.Path, pathlib.Path)
    """
    if isinstance(source, (str, PathLike)):
        folder = Path(source)
        if not folder.is_dir():
            raise SegmentationError(f"training folder {folder} does not exist")
        pairs = [(p, p.with_name(p.name[: -len(IMAGE_SUFFIX)] + MASK_SUFFIX))
                 for p in sorted(folder.glob(f"*{IMAGE_SUFFIX}"))]
    else:
        pairs = [(Path(p["image"]), Path(p["mask"])) for p in source]
    if not pairs:
        raise SegmentationError(f"no annotated frames found in {source}")
    for img, msk in pairs:
        for f in (img, msk):
            if not f.is_file():
                raise SegmentationError(f"annotated frame file {f} does not exist")
    return pairs


def read_pairs(pairs: Sequence[tuple[Path, Path]]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Read (image, mask) pairs; masks are renumbered 1..n (ids may skip numbers on disk)."""
    import tifffile
    from skimage.segmentation import relabel_sequential

    images, masks = [], []
    for img_path, msk_path in pairs:
        img, msk = tifffile.imread(img_path), tifffile.imread(msk_path)
        if img.ndim != 2 or msk.ndim != 2:
            raise SegmentationError(f"{img_path} / {msk_path}: annotated frames must be 2D "
                                    f"(Y, X), got {img.shape} and {msk.shape}")
        if img.shape != msk.shape:
            raise SegmentationError(f"{img_path} {img.shape} and {msk_path} {msk.shape} "
                                    "differ in shape")
        if not np.issubdtype(msk.dtype, np.integer):
            raise SegmentationError(f"{msk_path}: mask must hold integer labels, got {msk.dtype}")
        images.append(img)
        masks.append(relabel_sequential(msk.astype(np.int64))[0].astype(np.uint32))
    return images, masks


def normalize_frames(images: Sequence[np.ndarray],
                     normalize: Mapping[str, Any] | None = None) -> list[np.ndarray]:
    """Normalise (Y, X) frames as segmentation does, for training.

    ``cellpose.train.train_seg`` (3.1.1.2) accepts a ``normalize`` dict but hands
    it to ``transforms.normalize_img`` as the ``normalize`` flag, so its
    percentiles, inversion etc. are silently ignored (always 1-99). Frames are
    therefore normalised here and passed to it as already normalised.

    Parameters
    ----------
    images : sequence of numpy.ndarray
        (Y, X) frames of any real dtype (not modified).
    normalize : mapping, optional
        ``cellpose.transforms.normalize_img`` keywords (``percentile``, ``invert``,
        ...); ``None``: Cellpose's default (1st-99th percentile).

    Returns
    -------
    list of numpy.ndarray
        (Y, X) float32 frames.
    """
    import_cellpose()
    from cellpose import models, transforms

    norm = {**models.normalize_default, **(normalize or {}), "normalize": True}
    return [transforms.normalize_img(np.asarray(i, dtype=np.float32)[..., np.newaxis],
                                     **norm)[..., 0] for i in images]


def set_training_diameter(model, diam_mean_px: float) -> None:
    """Make a loaded Cellpose 3 model train (and later segment) at objects of ``diam_mean_px``.

    Cellpose rescales every frame so that objects are ``net.diam_mean`` pixels
    across before the network sees it. Fine-tuning weights at a larger value
    lets the network resolve finer structure (e.g. the thin ring of a
    cell-in-cell host); the convolution weights themselves carry no scale.

    Parameters
    ----------
    model : cellpose.models.CellposeModel
        Modified in place (its ``diam_mean`` and ``net.diam_mean``).
    diam_mean_px : float
        New training diameter in pixels, > 0.
    """
    if not diam_mean_px > 0:
        raise SegmentationError(f"segment.training.diam_mean_px must be > 0, got {diam_mean_px}")
    old = float(model.net.diam_mean.item())
    if old != diam_mean_px:
        log.info("objects rescaled to %.1f px for training (the initial model used %.1f px)",
                 diam_mean_px, old)
    model.net.diam_mean.data[:] = diam_mean_px
    model.diam_mean = diam_mean_px


def train_model(images: Sequence[np.ndarray], masks: Sequence[np.ndarray],
                out_path: str | PathLike, settings: Mapping[str, Any] | None = None,
                use_gpu: bool = False, normalize: Mapping[str, Any] | None = None) -> dict:
    """Train a Cellpose 3 network from scratch with ``cellpose.train.train_seg``.

    Parameters
    ----------
    images, masks : sequence of numpy.ndarray
        (Y, X) training images and their label images.
    out_path : str or path-like
        Where the weights go (written atomically).
    settings : mapping, optional
        ``segment.training`` keys (:data:`TRAIN_DEFAULTS`).
    use_gpu : bool, optional
    normalize : mapping, optional
        Normalisation of the training frames (``cellpose.transforms.normalize_img``
        keywords, e.g. ``{"percentile": (1, 99.5)}``): the same as the population's
        segmentation uses (:func:`livescreen.segment.eval_params`), so the network
        sees frames scaled as it will at inference. ``None``: Cellpose's default
        (1st-99th percentile).

    Returns
    -------
    dict
        Training record: settings, normalisation, number of frames and masks,
        losses, seconds.
    """
    import torch
    import_cellpose()
    from cellpose import models, train

    from livescreen.imageio import atomic_path

    from .cellpose3 import select_device

    s = {**TRAIN_DEFAULTS, **(settings or {})}
    if len(images) != len(masks) or not images:
        raise SegmentationError(f"need matching, non-empty images and masks "
                                f"({len(images)} / {len(masks)})")
    n_masks = [int(len(np.unique(m)) - 1) for m in masks]
    if sum(n_masks) == 0:
        raise SegmentationError("the training masks contain no objects")
    torch.manual_seed(int(s["seed"]))
    np.random.seed(int(s["seed"]))  # noqa: NPY002 - cellpose.train draws from the legacy global RNG
    device = select_device(use_gpu)
    init = s.get("initial_model")
    if init:  # fine-tune existing weights
        from .cellpose3 import load_model

        model = load_model(init, use_gpu=use_gpu).model
        log.info("fine-tuning %s (trained at objects of %.1f px)", init,
                 float(model.net.diam_mean.item()))
        if s["diam_mean_px"] is not None:
            set_training_diameter(model, float(s["diam_mean_px"]))
    else:
        model = models.CellposeModel(device=device, pretrained_model=False,
                                     diam_mean=float(s["diam_mean_px"] or SCRATCH_DIAM_MEAN_PX))
    t0, cpu0 = time.perf_counter(), time.process_time()
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        import tempfile

        with tempfile.TemporaryDirectory(dir=out_path.parent) as work:
            path, losses, _ = train.train_seg(
                model.net, train_data=normalize_frames(images, normalize),
                train_labels=[np.asarray(m) for m in masks], channels=[0, 0],
                # a dict: ``normalize=False`` would set the module-wide
                # ``cellpose.models.normalize_default["normalize"]`` to False
                # (3.1.1.2), switching normalisation off for every later eval
                normalize={"normalize": False}, batch_size=int(s["batch_size"]),
                learning_rate=float(s["learning_rate"]), n_epochs=int(s["n_epochs"]),
                weight_decay=float(s["weight_decay"]), SGD=bool(s["sgd"]),
                nimg_per_epoch=int(s["nimg_per_epoch"]), bsize=int(s["crop_px"]),
                min_train_masks=int(s["min_train_masks"]), save_path=work,
                save_every=10**9, model_name="model")
            Path(path).replace(tmp)
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
    record = {"settings": s, "normalize": {k: list(v) if isinstance(v, tuple) else v
                                           for k, v in (normalize or {}).items()} or None,
              "n_frames": len(images), "n_masks": int(sum(n_masks)),
              "diam_labels_px": float(model.net.diam_labels.item()),
              "train_loss": [float(x) for x in np.asarray(losses)], "seconds": round(seconds, 1),
              "cpu_seconds": round(cpu_seconds, 1), "device": str(device),
              "threads": torch.get_num_threads()}
    log.info("trained %d epochs on %d frames (%d masks) in %.0f s (%.0f CPU s); final loss %.3f",
             s["n_epochs"], len(images), sum(n_masks), seconds, cpu_seconds,
             record["train_loss"][-1])
    return record


def average_precision(true_masks: Sequence[np.ndarray], pred_masks: Sequence[np.ndarray],
                      threshold: float = 0.5) -> dict:
    """AP at an IoU threshold (``cellpose.metrics.average_precision``), per frame and overall.

    Parameters
    ----------
    true_masks, pred_masks : sequence of numpy.ndarray
        Ground-truth and predicted label images, pairwise of equal shape.
    threshold : float, optional
        IoU threshold (default 0.5).

    Returns
    -------
    dict
        ``ap_mean`` (mean of per-frame AP), ``ap_pooled`` (from TP/FP/FN summed
        over frames), ``per_frame``, ``tp``, ``fp``, ``fn``.
    """
    import_cellpose()
    from cellpose import metrics
    from skimage.segmentation import relabel_sequential

    if len(true_masks) != len(pred_masks) or not true_masks:
        raise SegmentationError("need matching, non-empty lists of true and predicted masks")
    t = [relabel_sequential(np.asarray(m).astype(np.int64))[0] for m in true_masks]
    p = [relabel_sequential(np.asarray(m).astype(np.int64))[0] for m in pred_masks]
    ap, tp, fp, fn = metrics.average_precision(t, p, threshold=[threshold])
    tp, fp, fn = (int(np.sum(a)) for a in (tp, fp, fn))
    pooled = tp / max(tp + fp + fn, 1)
    return {"threshold": threshold, "ap_mean": float(np.mean(ap[:, 0])),
            "ap_pooled": float(pooled), "per_frame": [float(a) for a in ap[:, 0]],
            "tp": tp, "fp": fp, "fn": fn}


def evaluate(backend, images: Sequence[np.ndarray], masks: Sequence[np.ndarray],
             params: EvalParams) -> dict:
    """Segment annotated frames with ``backend`` and score AP@0.5 against their masks."""
    preds = list(backend.segment(images, params))
    return average_precision(masks, preds)


def write_record(path: str | PathLike, record: Mapping[str, Any]) -> None:
    """Write a training/evaluation record as JSON."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(record, indent=2) + "\n")


def train_and_validate(train_source, validation_source, model_out: str | PathLike,
                       record_out: str | PathLike, config: Mapping[str, Any], population: str,
                       threads: int = 1) -> dict:
    """Rule ``train_cellpose``: train on annotated frames, score AP@0.5 on held-out ones.

    Parameters
    ----------
    train_source, validation_source : str, path-like or list of mappings
        Training-frame folders or lists of ``{image, mask}`` (see :func:`list_pairs`).
    model_out, record_out : str or path-like
        Weights file and JSON record (settings, losses, validation AP, seconds).
    config : mapping
        The whole workflow config.
    population : {"target", "effector"}
    threads : int, optional
        Torch threads.

    Returns
    -------
    dict
        The record written to ``record_out``.
    """
    from .cellpose3 import configure_torch, load_model
    from .rules import initial_model
    from .site import eval_params, segment_settings

    seg = segment_settings(config)
    configure_torch(threads)
    init = initial_model(config, population)
    settings = {**seg["training"], "initial_model": init[0] if init else None}
    params = eval_params(config, population)
    images, masks = read_pairs(list_pairs(train_source))
    record = train_model(images, masks, model_out, settings, use_gpu=bool(seg["use_gpu"]),
                         normalize=params.normalize_kwargs)
    val_images, val_masks = read_pairs(list_pairs(validation_source))
    backend = load_model(model_out, use_gpu=bool(seg["use_gpu"]))
    record["validation"] = evaluate(backend, val_images, val_masks, params)
    record["population"] = population
    log.info("validation AP@0.5 on %d held-out frames: %.3f (mean per frame), %.3f pooled",
             len(val_images), record["validation"]["ap_mean"], record["validation"]["ap_pooled"])
    write_record(record_out, record)
    return record


def make_training_frames(out_dir: str | PathLike, config: Mapping[str, Any], population: str,
                         split: str) -> list[Path]:
    """Rule ``simulate_training_frames``: simulated annotated frames into ``out_dir``."""
    from .site import segment_settings

    sim = segment_settings(config)["training"]["simulate"]
    images, masks = simulate_training_set(
        config.get("simulate") or {}, config["imaging"], population, split,
        int(sim[f"{split}_sites"]), int(sim[f"{split}_frames_per_site"]))
    log.info("%d simulated %s frames for %s (%d objects)", len(images), split, population,
             sum(len(np.unique(m)) - 1 for m in masks))
    return write_training_set(out_dir, images, masks)
