"""Per-frame QC of label stacks and the montage shown in the report."""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series


class SegmentQC(pa.DataFrameModel):
    """``segment/{population}_qc.parquet``: one row per frame of a site and population."""

    frame: Series[int] = pa.Field(ge=0, unique=True)
    time_min: Series[float] = pa.Field(ge=0)
    n_objects: Series[int] = pa.Field(ge=0)
    area_um2_mean: Series[float] = pa.Field(ge=0, nullable=True)
    area_um2_median: Series[float] = pa.Field(ge=0, nullable=True)
    area_um2_p05: Series[float] = pa.Field(ge=0, nullable=True)
    area_um2_p95: Series[float] = pa.Field(ge=0, nullable=True)
    area_um2_min: Series[float] = pa.Field(ge=0, nullable=True)
    area_um2_max: Series[float] = pa.Field(ge=0, nullable=True)
    coverage: Series[float] = pa.Field(ge=0, le=1, description="fraction of pixels in objects")
    empty_input: Series[bool] = pa.Field(description="the input frame was constant (e.g. all 0)")

    class Config:
        strict = True
        coerce = True


def frame_qc(labels: np.ndarray, frame: int, time_min: float, pixel_size_um: float,
             empty_input: bool = False) -> dict:
    """QC row of one (Y, X) label image.

    Parameters
    ----------
    labels : numpy.ndarray
        (Y, X) integer labels, 0 = background.
    frame : int
    time_min : float
    pixel_size_um : float
    empty_input : bool, optional

    Returns
    -------
    dict
        One :class:`SegmentQC` row.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be (Y, X), got {labels.shape}")
    counts = np.bincount(labels.ravel().astype(np.int64))[1:]
    areas = counts[counts > 0] * float(pixel_size_um) ** 2
    row = {"frame": int(frame), "time_min": float(time_min), "n_objects": int(len(areas)),
           "coverage": float(np.count_nonzero(labels) / labels.size),
           "empty_input": bool(empty_input)}
    stats = {"mean": np.mean, "median": np.median, "p05": lambda a: np.percentile(a, 5),
             "p95": lambda a: np.percentile(a, 95), "min": np.min, "max": np.max}
    for k, f in stats.items():
        row[f"area_um2_{k}"] = float(f(areas)) if len(areas) else np.nan
    return row


def qc_table(rows: Sequence[dict]) -> pd.DataFrame:
    """Validated QC table from :func:`frame_qc` rows."""
    cols = list(SegmentQC.to_schema().columns)
    return SegmentQC.validate(pd.DataFrame(list(rows), columns=cols))


def outline_overlay(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """RGB uint8 view of a frame (1-99.8 percentile stretch) with label outlines in yellow."""
    from skimage.segmentation import find_boundaries

    img = np.asarray(image, dtype=np.float32)
    lo, hi = np.percentile(img, [1, 99.8])
    grey = np.clip((img - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(img)
    rgb = np.repeat((grey * 255).astype(np.uint8)[..., None], 3, axis=-1)
    edges = find_boundaries(np.asarray(labels), mode="inner")
    rgb[edges] = (255, 220, 0)
    return rgb


def save_montage(path: str | PathLike, panels: Sequence[tuple[int, np.ndarray, np.ndarray]],
                 title: str = "") -> None:
    """Save a row of frames with outlines as PNG.

    Parameters
    ----------
    path : str or path-like
    panels : sequence of (frame index, image, labels)
    title : str, optional
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from livescreen.imageio import atomic_path

    n = max(1, len(panels))
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.5), squeeze=False)
    for ax in axes[0]:
        ax.axis("off")
    for ax, (t, img, lab) in zip(axes[0], panels, strict=False):
        ax.imshow(outline_overlay(img, lab), interpolation="nearest")
        ax.set_title(f"frame {t}: {len(np.unique(lab)) - 1} objects", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)


def montage_frames(n_frames: int, n_panels: int) -> list[int]:
    """Evenly spaced frame indices (first and last included) for the montage."""
    if n_frames < 1:
        return []
    return sorted({int(round(x)) for x in np.linspace(0, n_frames - 1, min(n_panels, n_frames))})
