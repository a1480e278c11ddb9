"""Cellpose 3 (``cellpose==3.1.*``) back-end of the segment stage.

Why not just ``CellposeModel.eval``: for a time-lapse the default ``eval``
cuts every frame into overlapping 224-pixel tiles (a 512 x 512 frame becomes
9 tiles, ~1.7x the pixels of the frame) and runs the network one frame at a
time. :class:`Cellpose3Backend` runs the *same* Cellpose functions
(``transforms.convert_image``/``normalize_img``, ``core.run_net``,
``dynamics.resize_and_compute_masks``) with settings chosen for speed:

* one tile per frame (tile size = padded frame size), so no overlap is
  computed twice and nothing is averaged;
* several frames per network call (``batch_frames``);
* mask reconstruction (flow dynamics, flow-error check) of batch *k* runs in
  a worker thread while the network runs on batch *k + 1* (``pipeline``).

The masks equal those of ``CellposeModel.eval(..., bsize=<padded frame size>)``
(the "tuned eval", :meth:`Cellpose3Backend.reference_eval`); the bench
(``bench/bench_segment.py``) checks this and times both against the bare
network forward pass.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from os import PathLike
from pathlib import Path

import numpy as np

from .backend import EvalParams, SegmentationError
from .postprocess import postprocess_masks

log = logging.getLogger(__name__)

#: Cellpose's default mean diameter (pixels) of models that do not store one.
DEFAULT_DIAM_MEAN = 30.0


def import_cellpose():
    """Import Cellpose with its numba kernels cached on disk; returns ``cellpose``.

    ``cellpose.dynamics`` compiles four numba kernels with explicit signatures
    when it is imported, without numba's cache, so every segment job compiled
    them again (about half of the time ``import cellpose.models`` takes). For the
    first import in the process only, ``numba.njit`` adds ``cache=True`` to the
    functions defined in ``cellpose.dynamics`` while that module is imported:
    the first job compiles and writes numba's cache (beside the module, else
    numba's user-wide cache directory or ``NUMBA_CACHE_DIR``), later jobs load
    it. Numba checks the cache against the module file's timestamp and size and
    against the CPU, so a changed Cellpose or another machine compiles afresh;
    the compiled code is the same, so masks do not change
    (``bench/bench_segment.py --import-time`` times it). Module-level functions
    here and in :mod:`livescreen.segment.training` call it before importing
    Cellpose; methods of :class:`Cellpose3Backend` run after :func:`load_model`.
    """
    import sys

    if "cellpose.dynamics" not in sys.modules:
        import numba

        njit = numba.njit
        module = "cellpose.dynamics"

        def _njit(*args, **kwargs):
            # only functions defined in cellpose.dynamics are cached: modules it
            # imports for the first time (numba.typed, ...) define jitted
            # functions of their own, some from source strings numba cannot cache
            if len(args) == 1 and callable(args[0]) and not kwargs:   # bare @njit
                fn = args[0]
                return njit(fn, cache=True) if fn.__module__ == module else njit(fn)

            def decorate(fn):
                kw = {"cache": True, **kwargs} if fn.__module__ == module else kwargs
                return njit(*args, **kw)(fn)
            return decorate

        numba.njit = _njit
        try:
            import cellpose.dynamics  # noqa: F401  (compiles or loads the kernels)
        finally:
            numba.njit = njit
    import cellpose

    return cellpose


def configure_torch(threads: int) -> None:
    """Set torch intra-op threads to the rule's ``threads`` (and inter-op to 1).

    Parameters
    ----------
    threads : int
        Number of CPU threads the job may use (>= 1).
    """
    import torch

    if threads < 1:
        raise SegmentationError(f"threads must be >= 1, got {threads}")
    torch.set_num_threads(int(threads))
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set (or parallel work started) in this process
        pass
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))


def select_device(use_gpu: bool):
    """Pick the torch device: a GPU when requested and present, otherwise the CPU.

    Parameters
    ----------
    use_gpu : bool
        Whether a GPU may be used.

    Returns
    -------
    torch.device
    """
    import torch

    if use_gpu:
        if torch.cuda.is_available():
            dev = torch.device("cuda:0")
            log.info("device: GPU %s (CUDA)", torch.cuda.get_device_name(0))
            return dev
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            log.info("device: GPU (Apple MPS)")
            return torch.device("mps")
        log.warning("GPU requested (segment.use_gpu: true) but none is available; using the CPU")
    log.info("device: CPU, %d torch thread(s)", torch.get_num_threads())
    return torch.device("cpu")


def _check_state_dict(path: Path):
    """Load a weights file's state dict (CPU) or raise a clear error."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle/zip/torch errors of many kinds
        raise SegmentationError(
            f"cannot read Cellpose model file {path}: not a PyTorch weights file ({err})"
        ) from err
    if not isinstance(state, dict) or "output.2.weight" not in state:
        raise SegmentationError(
            f"{path} is a PyTorch file but not a Cellpose 3 network (no 'output.2.weight'); "
            "Cellpose 4 (cpsam) models need a Cellpose-4 back-end"
        )
    return state


def load_model(path: str | PathLike, *, use_gpu: bool = False, diam_mean: float | None = None,
               mkldnn: bool = True) -> Cellpose3Backend:
    """Load Cellpose 3 weights from a local file, never downloading anything.

    Parameters
    ----------
    path : str or path-like
        Weights file (a fetched built-in model, a custom model or a model
        trained by the workflow).
    use_gpu : bool, optional
        Use a GPU when one is present.
    diam_mean : float, optional
        Mean diameter (pixels) the network was trained at, for weights that do
        not store it (default 30, or 17 for Cellpose's ``nuclei``). Ignored when
        the file stores it.
    mkldnn : bool, optional
        Use oneDNN (MKL-DNN) kernels on the CPU (Cellpose's default).

    Returns
    -------
    Cellpose3Backend

    Raises
    ------
    SegmentationError
        If the file is missing or is not a Cellpose 3 network.
    """
    import_cellpose()
    from cellpose import models

    # cellpose.core logs a progress bar per network call; keep job logs readable
    logging.getLogger("cellpose.core").setLevel(logging.WARNING)
    path = Path(path)
    if not path.is_file():
        raise SegmentationError(f"Cellpose model file {path} does not exist")
    state = _check_state_dict(path)
    stored = "diam_mean" in state
    if diam_mean is None:
        diam_mean = 17.0 if path.name.startswith("nucleitorch") else DEFAULT_DIAM_MEAN
    device = select_device(use_gpu)
    try:
        model = models.CellposeModel(pretrained_model=str(path), device=device, mkldnn=mkldnn,
                                     diam_mean=float(diam_mean))
    except Exception as err:
        raise SegmentationError(f"cannot load Cellpose model {path}: {err}") from err
    if not stored:
        model.diam_mean = float(diam_mean)
        model.net.diam_mean.data[:] = float(diam_mean)
    log.info("model %s: diam_mean %.1f px, diam_labels %.1f px", path,
             float(model.diam_mean), float(model.diam_labels))
    return Cellpose3Backend(model)


def padded_size(ly: int, lx: int) -> tuple[int, int]:
    """Size of a (ly, lx) image after Cellpose's network padding (``get_pad_yx``)."""
    import_cellpose()
    from cellpose import transforms

    y1, y2, x1, x2 = transforms.get_pad_yx(int(ly), int(lx))
    return ly + y1 + y2, lx + x1 + x2


class Cellpose3Backend:
    """A loaded Cellpose 3 model, segmenting frames with speed-tuned settings.

    Parameters
    ----------
    model : cellpose.models.CellposeModel
        The loaded model (see :func:`load_model`).
    pipeline : bool, optional
        Reconstruct masks of one batch in a worker thread while the network
        runs on the next (default True).
    """

    def __init__(self, model, pipeline: bool = True):
        self.model = model
        self.pipeline = pipeline
        self.device = str(model.device)

    # -- pre-processing --------------------------------------------------------------
    def rescale(self, params: EvalParams) -> float:
        """Resize factor applied to frames before the network (model diam / object diam)."""
        diam_mean = float(self.model.diam_mean)
        if params.diameter_px is not None:
            return diam_mean / float(params.diameter_px)
        return diam_mean / float(self.model.diam_labels)

    def prepare(self, frame: np.ndarray, params: EvalParams) -> np.ndarray:
        """Convert and normalise one (Y, X) frame exactly as ``CellposeModel.eval`` does.

        Parameters
        ----------
        frame : numpy.ndarray
            (Y, X) image of any real dtype.
        params : EvalParams

        Returns
        -------
        numpy.ndarray
            (Y, X, nchan) float32 (grayscale in channel 0, zeros elsewhere).
        """
        from cellpose import models, transforms

        frame = np.asarray(frame)
        if frame.ndim != 2:
            raise SegmentationError(f"expected a (Y, X) frame, got shape {frame.shape}")
        if not (np.issubdtype(frame.dtype, np.integer) or np.issubdtype(frame.dtype, np.floating)):
            raise SegmentationError(f"frame dtype {frame.dtype} is not numeric")
        if np.issubdtype(frame.dtype, np.floating) and not np.isfinite(frame).all():
            raise SegmentationError("frame contains NaN or infinite values")
        x = transforms.convert_image(frame, [0, 0], channel_axis=None, z_axis=None,
                                     do_3D=False, nchan=self.model.nchan)
        norm = {**models.normalize_default, **params.normalize_kwargs}
        x = transforms.normalize_img(x[np.newaxis], **norm)
        return x[0]

    def _tile(self, shape: tuple[int, int], rescale: float, params: EvalParams) -> int:
        ly, lx = shape
        if rescale != 1.0:
            ly, lx = int(ly * rescale), int(lx * rescale)
        full = max(padded_size(ly, lx))
        return full if params.tile_size_px is None else min(full, params.tile_size_px)

    # -- network ---------------------------------------------------------------------
    def _network(self, imgs: np.ndarray, params: EvalParams) -> np.ndarray:
        """Network outputs (B, Y, X, 3) at frame size, as in ``CellposeModel._run_net``."""
        from cellpose import core, transforms

        rescale = self.rescale(params)
        bsize = self._tile(imgs.shape[1:3], rescale, params)
        yf, _ = core.run_net(self.model.net, imgs, batch_size=max(1, len(imgs)), augment=False,
                             tile_overlap=params.tile_overlap, bsize=bsize,
                             rsz=rescale if rescale != 1.0 else None)
        if rescale != 1.0:  # resample=True: flows back at the frame's size
            yf = transforms.resize_image(yf, imgs.shape[1], imgs.shape[2])
        return yf

    def _masks(self, yf: np.ndarray, params: EvalParams) -> np.ndarray:
        """Masks of one frame from its network output (Y, X, 3), as ``eval`` computes them."""
        from cellpose import dynamics

        rescale = self.rescale(params)
        niter = params.niter if params.niter else 200.0 / rescale
        dP = np.ascontiguousarray(yf[..., :2].transpose(2, 0, 1))
        cellprob = np.ascontiguousarray(yf[..., 2])
        masks = dynamics.resize_and_compute_masks(
            dP, cellprob, niter=niter, cellprob_threshold=params.cellprob_threshold,
            flow_threshold=params.flow_threshold, interp=True, resize=None,
            min_size=params.cellpose_min_size_px, max_size_fraction=0.4, device=self.model.device)
        return postprocess_masks(masks.astype(np.uint32, copy=False), cellprob, params)

    def _batch_masks(self, yf: np.ndarray | None, live: list[int], n: int,
                     shape: tuple[int, int], params: EvalParams) -> list[np.ndarray]:
        out = [np.zeros(shape, np.uint32) for _ in range(n)]
        for j, i in enumerate(live):
            out[i] = self._masks(yf[j], params)
        return out

    # -- public ----------------------------------------------------------------------
    def segment(self, frames: Iterable[np.ndarray], params: EvalParams) -> Iterator[np.ndarray]:
        """Segment frames one batch at a time; yield (Y, X) uint32 label images in order.

        At most two batches of frames (and one of network outputs) are held in
        memory, whatever the number of frames.

        Parameters
        ----------
        frames : iterable of numpy.ndarray
            (Y, X) frames, all of the same shape.
        params : EvalParams

        Yields
        ------
        numpy.ndarray
            Labels 1..n of the frame's objects (0 = background), uint32.
        """
        pool = ThreadPoolExecutor(max_workers=1) if self.pipeline else None
        pending: Future | list | None = None
        shape = None
        try:
            for batch in _batches(frames, params.batch_frames):
                for f in batch:
                    f = np.asarray(f)
                    if f.ndim != 2:
                        raise SegmentationError(f"expected (Y, X) frames, got shape {f.shape}")
                    if np.issubdtype(f.dtype, np.floating) and not np.isfinite(f).all():
                        raise SegmentationError("frame contains NaN or infinite values")
                    if shape is None:
                        shape = np.shape(f)
                    elif np.shape(f) != shape:
                        raise SegmentationError(f"frame shape {np.shape(f)} differs from the "
                                                f"first frame's {shape}")
                # constant frames (e.g. all zero) have no objects: skip the network
                live = [i for i, f in enumerate(batch) if np.ptp(f) > 0]
                yf = (self._network(np.stack([self.prepare(batch[i], params) for i in live]),
                                    params) if live else None)
                if pending is not None:
                    yield from (pending.result() if pool else pending)
                args = (yf, live, len(batch), shape, params)
                pending = (pool.submit(self._batch_masks, *args) if pool
                           else self._batch_masks(*args))
            if pending is not None:
                yield from (pending.result() if pool else pending)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def reference_eval(self, frame: np.ndarray, params: EvalParams,
                       tuned: bool = True) -> np.ndarray:
        """Masks from ``CellposeModel.eval`` itself, for checks and the bench.

        Parameters
        ----------
        frame : numpy.ndarray
            (Y, X) frame.
        params : EvalParams
        tuned : bool, optional
            True: one tile per frame (the settings this back-end uses);
            False: Cellpose's defaults (224-pixel tiles, 10% overlap).

        Returns
        -------
        numpy.ndarray
            (Y, X) uint32 labels.
        """
        kwargs = {}
        if tuned:
            rescale = self.rescale(params)
            kwargs["bsize"] = self._tile(np.shape(frame), rescale, params)
            kwargs["tile_overlap"] = params.tile_overlap
        masks, flows, _ = self.model.eval(
            np.asarray(frame), channels=[0, 0], diameter=params.diameter_px,
            normalize=params.normalize_kwargs,
            flow_threshold=params.flow_threshold, cellprob_threshold=params.cellprob_threshold,
            min_size=params.cellpose_min_size_px, niter=params.niter, **kwargs)
        # the same post-processing as segment()
        return postprocess_masks(np.asarray(masks).astype(np.uint32), np.asarray(flows[2]),
                                 params)

    def forward_only(self, frame: np.ndarray, params: EvalParams) -> np.ndarray:
        """Bare network forward pass on one prepared, resized and padded frame.

        Parameters
        ----------
        frame : numpy.ndarray
            (Y, X, nchan) output of :meth:`prepare`.
        params : EvalParams

        Returns
        -------
        numpy.ndarray
            (1, 3, Y', X') raw network output.
        """
        import torch
        from cellpose import transforms

        rescale = self.rescale(params)
        x = transforms.resize_image(frame, rsz=rescale) if rescale != 1.0 else frame
        y1, y2, x1, x2 = transforms.get_pad_yx(x.shape[0], x.shape[1])
        x = np.pad(x.transpose(2, 0, 1), ((0, 0), (y1, y2), (x1, x2)))
        net = self.model.net
        if getattr(net, "mkldnn", False):
            from torch.utils import mkldnn as mkldnn_utils
            net = mkldnn_utils.to_mkldnn(net)
        net.eval()
        with torch.no_grad():
            y = net(torch.from_numpy(x[np.newaxis]).to(self.model.device))[0]
        return y.cpu().numpy()


def _batches(items: Iterable, n: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch
