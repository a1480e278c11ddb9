"""Segmentation back-end interface: what the segment stage needs from a model.

The stage talks to a :class:`Backend`; :mod:`livescreen.segment.cellpose3` is
the Cellpose 3 implementation. A Cellpose 4 (``cpsam``) back-end would be a
second module implementing the same three methods, selected by
``segment.backend`` in config.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


class SegmentationError(ValueError):
    """Segmentation cannot run as configured (bad model, bad input, ...)."""


@dataclass(frozen=True)
class EvalParams:
    """Per-population Cellpose parameters, in pixels (converted from config).

    Parameters
    ----------
    diameter_px : float or None
        Expected object diameter in pixels; ``None`` uses the model's own
        (the mean diameter of its training masks).
    flow_threshold : float
        Maximum flow error of a kept mask (Cellpose ``flow_threshold``);
        0 disables the check.
    cellprob_threshold : float
        Cell-probability threshold (Cellpose ``cellprob_threshold``).
    min_size_px : int
        Masks smaller than this many pixels are removed.
    min_edge_size_px : int or None
        Smaller minimum for masks touching the image edge (cells cut by the
        edge); ``None`` = ``min_size_px``.
    normalize : dict
        Cellpose normalisation parameters (``percentile``, ``tile_norm_blocksize``, ...),
        passed to ``cellpose.transforms.normalize_img``.
    invert : bool
        Invert intensities (dark cells on bright background).
    batch_frames : int
        Frames per network call.
    tile_size_px : int or None
        Network tile size; ``None`` = one tile per frame (no tiling overlap).
    tile_overlap : float
        Tile overlap fraction when tiling is used.
    niter : int or None
        Iterations of the flow dynamics; ``None`` = Cellpose's default.
    recover_unassigned : bool
        Make objects of foreground pixels that the flow dynamics leave
        unassigned (the ring of a cell-in-cell host;
        :func:`livescreen.segment.postprocess.recover_unassigned`).
    join_rings_gap_px : float or None
        Join the pieces of cell-in-cell host rings split around their inner
        cell, measured after closing gaps up to this many pixels
        (:func:`livescreen.segment.postprocess.join_split_rings`); ``None`` = off.
    """

    diameter_px: float | None = None
    flow_threshold: float = 0.4
    cellprob_threshold: float = 0.0
    min_size_px: int = 15
    min_edge_size_px: int | None = None
    normalize: dict = field(default_factory=lambda: {"percentile": (1.0, 99.0)})
    invert: bool = False
    batch_frames: int = 1
    tile_size_px: int | None = None
    tile_overlap: float = 0.1
    niter: int | None = None
    recover_unassigned: bool = False
    join_rings_gap_px: float | None = None

    def __post_init__(self):
        if self.diameter_px is not None and not self.diameter_px > 0:
            raise SegmentationError(f"diameter must be > 0 pixels, got {self.diameter_px}")
        if self.batch_frames < 1:
            raise SegmentationError(f"batch_frames must be >= 1, got {self.batch_frames}")
        if self.tile_size_px is not None and self.tile_size_px < 32:
            raise SegmentationError(f"tile size must be >= 32 pixels, got {self.tile_size_px}")
        if not 0 <= self.tile_overlap <= 0.5:
            raise SegmentationError(f"tile_overlap must be in [0, 0.5], got {self.tile_overlap}")

    @property
    def cellpose_min_size_px(self) -> int:
        """``min_size`` given to Cellpose: the smaller of the two minima.

        The larger, interior minimum is applied afterwards by
        :func:`livescreen.segment.postprocess.postprocess_masks`.
        """
        if self.min_edge_size_px is None:
            return self.min_size_px
        return min(self.min_size_px, self.min_edge_size_px)

    @property
    def normalize_kwargs(self) -> dict:
        """Cellpose ``normalize`` dict for these parameters, switched on.

        Returns
        -------
        dict
            ``normalize`` with ``"normalize": True`` and ``"invert"`` added: the
            form taken by ``CellposeModel.eval`` and ``normalize_img`` and used
            to normalise training frames the same way.
        """
        return {**self.normalize, "normalize": True, "invert": self.invert}


class Backend(Protocol):
    """A loaded segmentation model (one per job)."""

    device: str

    def segment(self, frames: Iterable[np.ndarray], params: EvalParams) -> Iterator[np.ndarray]:
        """Yield one (Y, X) uint32 label image per (Y, X) input frame, in order."""

    def reference_eval(self, frame: np.ndarray, params: EvalParams,
                       tuned: bool = True) -> np.ndarray:
        """Masks of the library's own ``eval`` (tuned or default settings), for checks."""

    def forward_only(self, frame: np.ndarray, params: EvalParams) -> np.ndarray:
        """Bare network forward pass on one pre-processed frame (the speed floor)."""
