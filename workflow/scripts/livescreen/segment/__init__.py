"""Segment stage: Cellpose label stacks per site and population.

Modules
-------
backend
    The back-end interface (:class:`EvalParams`, :class:`SegmentationError`).
cellpose3
    Cellpose 3 back-end with speed-tuned evaluation (same masks as the tuned ``eval``).
models
    ``model:`` setting -> weights file; fetching Cellpose built-ins.
site
    One job: movie -> label stack, QC table, montage (frames streamed).
qc
    Per-frame QC table contract and montage.
training
    Annotated frames (simulated for the demo), ``cellpose.train`` wrapper, AP@0.5.
"""

from .backend import EvalParams, SegmentationError
from .models import BUILTIN_MODELS, ModelSource, fetch_builtin, resolve_model
from .site import (
    POPULATIONS,
    chunk_ranges,
    eval_params,
    merge_segment_chunks,
    segment_settings,
    segment_site,
)

__all__ = ["BUILTIN_MODELS", "EvalParams", "ModelSource", "POPULATIONS", "SegmentationError",
           "chunk_ranges", "eval_params", "fetch_builtin", "merge_segment_chunks", "resolve_model",
           "segment_settings", "segment_site"]
