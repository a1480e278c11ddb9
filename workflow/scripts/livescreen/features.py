"""Per-object features of segmented time-lapses, computed once per site.

:func:`object_features` measures every object of a (T, Y, X) label stack with
:func:`skimage.measure.regionprops_table`, one call per frame with the
intensity image of *all* channels, so there is no Python loop over objects.
The tracking stage stores these columns in the tracks table and event scoring
reuses them (area, shape and per-channel intensities over time) instead of
measuring the masks again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from skimage.measure import regionprops_table

log = logging.getLogger(__name__)

#: Shape columns in pixel units, in output order (float unless stated).
GEOMETRY_COLUMNS = (
    "frame", "label_id", "y_px", "x_px", "area_px", "perimeter_px",
    "major_axis_px", "minor_axis_px", "eccentricity", "solidity", "touches_border",
)

_PROPS = ("label", "centroid", "area", "perimeter", "axis_major_length",
          "axis_minor_length", "eccentricity", "solidity", "bbox")


def channel_names(n_channels: int, roles: Mapping[str, int | None] | None = None) -> list[str]:
    """Name every channel of a movie by its role, or ``c<i>`` when it has none.

    Parameters
    ----------
    n_channels : int
        Number of channels (length of the C axis).
    roles : mapping of str to int or None, optional
        Channel roles to 0-based channel index, e.g. ``config["imaging"]["channels"]``.
        Roles mapped to ``None`` or to an index outside the movie are ignored.

    Returns
    -------
    list of str
        One name per channel, e.g. ``["target", "effector", "death"]``.

    Examples
    --------
    >>> channel_names(4, {"target": 0, "effector": 1, "death": None})
    ['target', 'effector', 'c2', 'c3']
    """
    if n_channels < 0:
        raise ValueError(f"n_channels must be >= 0, got {n_channels}")
    names = [f"c{i}" for i in range(n_channels)]
    for role, idx in (roles or {}).items():
        if idx is not None and 0 <= int(idx) < n_channels:
            names[int(idx)] = str(role)
    if len(set(names)) != len(names):
        raise ValueError(f"channel roles give duplicate channel names: {names}")
    return names


def intensity_columns(names: Sequence[str]) -> list[str]:
    """Column names of the per-channel mean intensities, ``intensity_mean_<name>``."""
    return [f"intensity_mean_{n}" for n in names]


def _empty_features(names: Sequence[str]) -> pd.DataFrame:
    cols: dict[str, pd.Series] = {
        c: pd.Series(dtype="int64" if c in ("frame", "label_id", "area_px") else "float64")
        for c in GEOMETRY_COLUMNS
    }
    cols["touches_border"] = pd.Series(dtype="bool")
    for c in intensity_columns(names):
        cols[c] = pd.Series(dtype="float64")
    return pd.DataFrame(cols)


def _check_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"labels must be a (T, Y, X) stack, got shape {labels.shape}")
    if labels.dtype.kind not in "ui":
        raise TypeError(f"labels must have an integer dtype, got {labels.dtype}")
    if labels.dtype.kind == "i" and labels.size and labels.min() < 0:
        raise ValueError("labels must not be negative")
    return labels


def _frame_features(lab: np.ndarray, img: np.ndarray | None, frame: int,
                    names: Sequence[str]) -> pd.DataFrame | None:
    """Regionprops of one frame; ``img`` is (Y, X, C) or None."""
    if not lab.any():
        return None
    props = list(_PROPS) + (["intensity_mean"] if img is not None else [])
    t = regionprops_table(lab, intensity_image=img, properties=props)
    h, w = lab.shape
    touches = ((t["bbox-0"] == 0) | (t["bbox-1"] == 0) | (t["bbox-2"] == h) | (t["bbox-3"] == w))
    out = {
        "frame": np.full(t["label"].shape, frame, dtype=np.int64),
        "label_id": t["label"].astype(np.int64),
        "y_px": t["centroid-0"], "x_px": t["centroid-1"],
        "area_px": t["area"].astype(np.int64),
        "perimeter_px": t["perimeter"],
        "major_axis_px": t["axis_major_length"], "minor_axis_px": t["axis_minor_length"],
        "eccentricity": t["eccentricity"], "solidity": t["solidity"],
        "touches_border": touches,
    }
    for i, col in enumerate(intensity_columns(names)):
        if img is None:
            out[col] = np.full(t["label"].shape, np.nan)
        else:  # skimage names one channel "intensity_mean-0" or "intensity_mean"
            out[col] = t.get(f"intensity_mean-{i}", t.get("intensity_mean"))
    return pd.DataFrame(out)


def _read_frame(image, t: int) -> np.ndarray:
    """Frame ``t`` as (C, Y, X) from an array or a :class:`livescreen.imageio.Movie`."""
    return image.frame(t) if hasattr(image, "frame") else np.asarray(image[t])


def object_features(labels: np.ndarray, image: np.ndarray | None = None,
                    names: Sequence[str] | None = None) -> pd.DataFrame:
    """Measure every object of every frame of a label stack.

    Parameters
    ----------
    labels : (T, Y, X) array of int
        Label stack, 0 = background; ids need only be unique within a frame.
    image : (T, C, Y, X) array or livescreen.imageio.Movie, optional
        The movie the labels were segmented from (read one frame at a time).
        Mean intensities are measured in every channel. When its T, Y or X
        size disagrees with ``labels``: frames beyond the movie, or all frames
        when Y/X differ, get NaN
        intensities and a warning is logged (geometry still comes from ``labels``).
    names : sequence of str, optional
        One name per channel (see :func:`channel_names`); ``c<i>`` by default.

    Returns
    -------
    pandas.DataFrame
        One row per object per frame, sorted by (frame, label_id), with the
        columns :data:`GEOMETRY_COLUMNS` (pixel units; centroids are (y, x) in
        pixels, ``touches_border`` is True when the mask touches the image edge)
        and ``intensity_mean_<name>`` per channel. Empty (but typed) when there
        are no objects.

    Notes
    -----
    Neither input is modified. The movie is read frame by frame, so a
    memory-mapped array is never loaded whole.
    """
    labels = _check_labels(labels)
    n_t = labels.shape[0]
    if image is not None:
        image = np.asarray(image) if not hasattr(image, "shape") else image
        if len(image.shape) != 4:
            raise ValueError(f"image must be a (T, C, Y, X) movie, got shape {image.shape}")
    n_c = 0 if image is None else int(image.shape[1])
    names = list(names) if names is not None else [f"c{i}" for i in range(n_c)]
    if image is not None and len(names) != n_c:
        raise ValueError(f"{len(names)} channel names for {n_c} channels")
    use_image = image is not None
    if use_image and tuple(image.shape[2:]) != tuple(labels.shape[1:]):
        log.warning("label stack %s and movie %s differ in Y/X; intensities are NaN",
                    labels.shape, image.shape)
        use_image = False
    elif use_image and image.shape[0] != n_t:
        log.warning("label stack has %d frames, the movie %d; intensities are NaN for "
                    "frames the movie lacks", n_t, image.shape[0])

    tables = []
    for t in range(n_t):
        img = None
        if use_image and t < image.shape[0]:
            img = np.moveaxis(_read_frame(image, t), 0, -1)
        frame = _frame_features(labels[t], img, t, names)
        if frame is not None:
            tables.append(frame)
    if not tables:
        return _empty_features(names)
    return pd.concat(tables, ignore_index=True)


def label_overlaps(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of overlapping objects of two label images, with its IoU.

    Vectorised: one ``np.unique`` over the pixels where both images are labelled.

    Parameters
    ----------
    a, b : (Y, X) int arrays
        Label images of the same shape (0 = background). Not modified.

    Returns
    -------
    ids_a, ids_b : int64 arrays
        Labels of each overlapping pair.
    iou : float array
        Intersection over union of each pair.
    """
    m = (a > 0) & (b > 0)
    if not m.any():
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0)
    av, bv = a[m].astype(np.int64), b[m].astype(np.int64)
    base = int(bv.max()) + 1
    key, inter = np.unique(av * base + bv, return_counts=True)
    ids_a, ids_b = key // base, key % base
    na = np.bincount(a.ravel().astype(np.int64))
    nb = np.bincount(b.ravel().astype(np.int64))
    return ids_a, ids_b, inter / (na[ids_a] + nb[ids_b] - inter)


def boundary_contacts(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel edges (4-neighbour) between the objects of one label image.

    The image is padded with the label ``edge = labels.max() + 1`` (the world
    beyond the image border), so an object's boundary includes its edges on
    the border, and those edges are counted against ``edge``.

    Parameters
    ----------
    labels : (Y, X) int array
        Labels (0 = background). Not modified.

    Returns
    -------
    total : (edge + 1,) int array
        Boundary edges of each label (index = label; 0 and ``edge`` are 0).
    pairs : (m, 2) int array
        Ordered pairs ``(a, b)``, ``a`` an object, ``b`` a different label
        (0 = background, ``edge`` = image border) sharing edges with it.
    counts : (m,) int array
        Edges of ``a`` bordering ``b``.
    """
    edge = int(labels.max()) + 1
    pad = np.pad(np.asarray(labels, dtype=np.int64), 1, constant_values=edge)
    a = np.concatenate([pad[:, :-1].ravel(), pad[:, 1:].ravel(), pad[:-1, :].ravel(),
                        pad[1:, :].ravel()])
    b = np.concatenate([pad[:, 1:].ravel(), pad[:, :-1].ravel(), pad[1:, :].ravel(),
                        pad[:-1, :].ravel()])
    keep = (a != b) & (a > 0) & (a != edge)
    a, b = a[keep], b[keep]
    base = edge + 1
    key, counts = np.unique(a * base + b, return_counts=True)
    return np.bincount(a, minlength=base), np.stack([key // base, key % base], axis=1), counts
