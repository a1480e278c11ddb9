"""Figures of a screen, drawn from the study tables alone (``results/tables``).

Each ``plot_*`` function takes DataFrames and returns a matplotlib Figure
sized for a paper (180 mm wide, 8 pt text, colour-blind-safe palette);
:func:`save` writes it as PNG and PDF. :mod:`livescreen.figures.catalog`
lists the figures and their tables without importing any plotting library;
the plotting names below are loaded on first use, so that planning the
workflow does not import matplotlib.
"""

from livescreen.figures.catalog import DEFAULTS, FIGURE_TABLES, figure_paths, settings

_PLOTS = ("FIGURES", "plot_dose_response", "plot_encounter_durations", "plot_outcome_fractions",
          "plot_plate_heatmap", "plot_qc", "plot_time_to_kill")

__all__ = ["DEFAULTS", "FIGURE_TABLES", "figure_paths", "save", "settings", *_PLOTS]


def __getattr__(name):
    if name in _PLOTS:
        from livescreen.figures import plots

        return getattr(plots, name)
    if name == "save":
        from livescreen.figures.style import save

        return save
    raise AttributeError(f"module 'livescreen.figures' has no attribute {name!r}")
