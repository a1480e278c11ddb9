"""Figures of a screen, drawn from the study tables alone (``results/tables``).

Each ``plot_*`` function takes DataFrames and returns a matplotlib Figure
sized for a paper (180 mm wide, 8 pt text, colour-blind-safe palette);
:func:`save` writes it as PNG and PDF.
"""

from livescreen.figures.plots import (
    FIGURES,
    plot_dose_response,
    plot_encounter_durations,
    plot_outcome_fractions,
    plot_plate_heatmap,
    plot_qc,
    plot_time_to_kill,
)
from livescreen.figures.style import DEFAULTS, save, settings

__all__ = ["DEFAULTS", "FIGURES", "figure_paths", "plot_dose_response", "plot_encounter_durations",
           "plot_outcome_fractions", "plot_plate_heatmap", "plot_qc", "plot_time_to_kill",
           "save", "settings"]


def figure_paths(figures_dir: str, formats) -> list[str]:
    """Every figure file: each figure of :data:`FIGURES` in each format.

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
    import os

    return [os.path.join(figures_dir, f"{name}.{fmt}") for name in FIGURES for fmt in formats]
