"""Post-processing of Cellpose masks that needs the network's cell probability."""

from __future__ import annotations

import numpy as np

from .backend import SegmentationError


def recover_unassigned(masks: np.ndarray, cellprob: np.ndarray, cellprob_threshold: float = 0.0,
                       min_size_px: int = 15) -> np.ndarray:
    """Turn foreground that Cellpose's flow dynamics left unassigned into objects.

    Cellpose builds masks by following the predicted flows to their sinks and
    drops pixels whose flows do not converge into a kept mask. The ring of a
    cell-in-cell host around its inner cell is such a case: the network calls
    the ring foreground (cell probability well above the threshold), but its
    flows, which must run around the hole, do not converge, and the host is
    lost while the inner cell is kept. Here every connected region of
    unassigned foreground that survives a 1-pixel opening (thin halos around
    kept masks do not) and still has ``min_size_px`` pixels becomes a new
    object, grown back by one pixel within the unassigned foreground.

    Parameters
    ----------
    masks : numpy.ndarray
        (Y, X) integer labels from Cellpose (0 = background); not modified.
    cellprob : numpy.ndarray
        (Y, X) cell-probability logits of the same frame, at the same size.
    cellprob_threshold : float, optional
        Foreground threshold (the one the masks were made with).
    min_size_px : int, optional
        Smallest recovered object (pixels, after the opening).

    Returns
    -------
    numpy.ndarray
        Labels of ``masks``' dtype: the original objects unchanged, recovered
        objects numbered after them (ids stay 1..n without gaps if the input's were).
    """
    from scipy import ndimage as ndi
    from skimage.segmentation import expand_labels

    masks = np.asarray(masks)
    cellprob = np.asarray(cellprob)
    if masks.ndim != 2 or masks.shape != cellprob.shape:
        raise SegmentationError(f"masks {masks.shape} and cell probability {cellprob.shape} "
                                "must be 2D arrays of the same shape")
    free = (cellprob > cellprob_threshold) & (masks == 0)
    core = ndi.binary_erosion(free, structure=ndi.generate_binary_structure(2, 1))
    lab, n = ndi.label(core)
    out = masks.copy()
    if n == 0:
        return out
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    keep = np.flatnonzero(sizes >= max(1, int(min_size_px)))
    keep = keep[keep > 0]
    if keep.size == 0:
        return out
    new_ids = np.zeros(n + 1, np.int64)
    new_ids[keep] = int(masks.max()) + 1 + np.arange(keep.size)
    grown = expand_labels(new_ids[lab], distance=1)
    sel = free & (grown > 0)
    out[sel] = grown[sel].astype(out.dtype, copy=False)
    return out
