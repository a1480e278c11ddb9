"""Which figures exist, which study tables each is drawn from, and figure settings.

Kept free of plotting imports so that the workflow can plan figure jobs
without loading matplotlib or seaborn.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

#: Figure name -> the ``results/tables`` tables (stems) it is drawn from.
FIGURE_TABLES: dict[str, list[str]] = {
    "outcome_fractions": ["wells", "conditions", "comparisons"],
    "time_to_kill": ["fates", "comparisons"],
    "dose_response": ["wells", "dose_response", "comparisons"],
    "plate_heatmap": ["wells"],
    "encounter_durations": ["encounters"],
    "qc": ["qc_frame_counts", "qc_track_lengths"],
}

#: Defaults of the ``figures:`` config section.
DEFAULTS: dict[str, Any] = {
    "dpi": 300,
    "formats": ["png", "pdf"],
    "heatmap_metric": "frac_killed",
    "palette": "colorblind",
}


def settings(fig_cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``figures:`` config section over :data:`DEFAULTS`."""
    return {**DEFAULTS, **dict(fig_cfg or {})}


def figure_paths(figures_dir: str, formats: Iterable[str]) -> list[str]:
    """Every figure file: each figure of :data:`FIGURE_TABLES` in each format.

    Parameters
    ----------
    figures_dir : str
        Folder the figures are written to.
    formats : iterable of str
        File formats, e.g. ``["png", "pdf"]``.

    Returns
    -------
    list of str
    """
    formats = list(formats)
    return [os.path.join(figures_dir, f"{name}.{fmt}") for name in FIGURE_TABLES
            for fmt in formats]
