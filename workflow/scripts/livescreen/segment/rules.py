"""Input helpers for workflow/rules/segment.smk (kept here: the rule file holds rules only)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .backend import SegmentationError
from .models import resolve_model
from .site import POPULATIONS, SIMULATED, segment_settings


def check_models(config: Mapping[str, Any]) -> None:
    """Resolve every population's ``model:`` now; raise :class:`SegmentationError` if bad."""
    seg = segment_settings(config)
    for population in POPULATIONS:
        resolve_model(seg["populations"][population]["model"], population, seg["models_dir"])


def model_path(config: Mapping[str, Any], population: str) -> str:
    """Weights file the segment job of ``population`` reads."""
    seg = segment_settings(config)
    return resolve_model(seg["populations"][population]["model"], population,
                         seg["models_dir"]).path


def training_source(config: Mapping[str, Any], population: str, split: str):
    """Annotated frames of a split: a folder (``simulated`` -> resources/training/...) or pairs."""
    value = segment_settings(config)["training"]["annotations"][population][split]
    if value == SIMULATED:
        return f"resources/training/{population}/{split}"
    return value


def training_files(config: Mapping[str, Any], population: str, split: str) -> list[str]:
    """Input files (or the folder) of a split, for Snakemake."""
    src = training_source(config, population, split)
    if isinstance(src, str):
        return [src]
    return [f for pair in src for f in (pair["image"], pair["mask"])]


def initial_model(config: Mapping[str, Any], population: str) -> list[str]:
    """Weights ``training.initial_model`` starts from (``[]`` = from scratch)."""
    seg = segment_settings(config)
    spec = seg["training"].get("initial_model")
    if not spec:
        return []
    if spec == "train":
        raise SegmentationError("segment.training.initial_model cannot be 'train'")
    return [resolve_model(spec, population, seg["models_dir"]).path]
