"""Shared figure style: paper size, fonts, colour-blind-safe palette, saving."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from os import PathLike
from pathlib import Path
from typing import Any

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
         dpi: int = 300, provenance: Mapping[str, Any] | None = None) -> list[Path]:
    """Write ``fig`` as ``stem.<fmt>`` for each format (no timestamps) and close it.

    Each file is written atomically. ``provenance`` (e.g.
    :func:`livescreen.tables.figure_provenance`) is embedded as JSON: PNG text
    chunk ``livescreen``, PDF ``Subject``, SVG ``Description``; read it back
    with :func:`livescreen.tables.read_figure_provenance`.
    """
    from livescreen.imageio import atomic_path
    from livescreen.tables import FIGURE_PROVENANCE_KEYS

    text = json.dumps(dict(provenance), sort_keys=True, default=str) if provenance else None
    paths = []
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        meta = {"CreationDate": None} if fmt == "pdf" else ({"Date": None} if fmt == "svg"
                                                          else {})
        if text is not None and fmt in FIGURE_PROVENANCE_KEYS:
            meta[FIGURE_PROVENANCE_KEYS[fmt]] = text
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, metadata=meta or None, format=fmt)
        paths.append(path)
    plt.close(fig)
    return paths
