"""Shared figure style: paper size, fonts, colour-blind-safe palette, saving."""

from __future__ import annotations

from collections.abc import Iterable
from os import PathLike
from pathlib import Path

import matplotlib

from livescreen.figures.catalog import DEFAULTS, settings  # noqa: F401 (re-export)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

#: defaults of the ``figures:`` config section
MM = 1 / 25.4


def apply_style(palette: str = "colorblind") -> None:
    """Seaborn ticks style at paper font sizes; deterministic output (no dates)."""
    sns.set_theme(style="ticks", palette=palette, context="paper", rc={
        "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7,
        "ytick.labelsize": 7, "legend.fontsize": 7, "legend.title_fontsize": 7,
        "axes.spines.top": False, "axes.spines.right": False, "pdf.fonttype": 42,
        "svg.hashsalt": "livescreen", "savefig.bbox": "tight"})


def figure(width_mm: float, height_mm: float, nrows: int = 1, ncols: int = 1, **kw):
    """A figure with a grid of axes at a physical size (mm)."""
    return plt.subplots(nrows, ncols, figsize=(width_mm * MM, height_mm * MM),
                        layout="constrained", squeeze=False, **kw)


def save(fig, stem: str | PathLike, formats: Iterable[str] = ("png", "pdf"),
         dpi: int = 300) -> list[Path]:
    """Write ``fig`` as ``stem.<fmt>`` for each format (no timestamps) and close it."""
    paths = []
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        meta = {"CreationDate": None} if fmt == "pdf" else ({"Date": None} if fmt == "svg"
                                                          else None)
        fig.savefig(path, dpi=dpi, metadata=meta)
        paths.append(path)
    plt.close(fig)
    return paths
