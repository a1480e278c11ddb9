"""Post-processing of Cellpose masks that needs the network's cell probability."""

from __future__ import annotations

import numpy as np

from .backend import SegmentationError


def recover_unassigned(masks: np.ndarray, cellprob: np.ndarray, cellprob_threshold: float = 0.0,
                       min_size_px: int = 15, min_edge_size_px: int | None = None) -> np.ndarray:
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

    Notes
    -----
    With ``min_edge_size_px``, unassigned foreground still left afterwards
    that touches the image edge (cells cut by the edge: there the network sees
    a cell, and the flows of a few-pixel-deep sliver rarely converge) becomes
    an object without the opening, from ``min_edge_size_px`` pixels.
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
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    keep = np.flatnonzero(sizes >= max(1, int(min_size_px)))
    keep = keep[keep > 0]
    if keep.size:
        new_ids = np.zeros(n + 1, np.int64)
        new_ids[keep] = int(masks.max()) + 1 + np.arange(keep.size)
        grown = expand_labels(new_ids[lab], distance=1)
        sel = free & (grown > 0)
        out[sel] = grown[sel].astype(out.dtype, copy=False)
    if min_edge_size_px is not None:
        out = _recover_edge_pieces(out, free & (out == 0), int(min_edge_size_px))
    return out


def _edge_ids(labels: np.ndarray) -> np.ndarray:
    """Non-zero labels on the image's outermost rows and columns."""
    ids = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return ids[ids > 0]


def _recover_edge_pieces(masks: np.ndarray, free: np.ndarray, min_size_px: int) -> np.ndarray:
    """Connected regions of ``free`` touching the image edge, >= ``min_size_px``, as new objects."""
    from scipy import ndimage as ndi

    lab, n = ndi.label(free)
    if n == 0:
        return masks
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    keep = _edge_ids(lab)
    keep = keep[sizes[keep] >= max(1, min_size_px)]
    if keep.size == 0:
        return masks
    new_ids = np.zeros(n + 1, np.int64)
    new_ids[keep] = int(masks.max()) + 1 + np.arange(keep.size)
    out = masks.copy()
    sel = new_ids[lab] > 0
    out[sel] = new_ids[lab][sel].astype(out.dtype, copy=False)
    return out


def remove_small_objects(masks: np.ndarray, min_size_px: int, min_edge_size_px: int
                         ) -> np.ndarray:
    """Remove objects smaller than ``min_size_px``, or ``min_edge_size_px`` at the image edge.

    A cell cut by the image edge is only partly in the frame, so a smaller
    minimum applies to objects touching it (debris in the field is what the
    interior minimum removes).

    Parameters
    ----------
    masks : numpy.ndarray
        (Y, X) integer labels (0 = background); not modified.
    min_size_px, min_edge_size_px : int
        Smallest kept object (pixels) inside the frame and touching its edge.

    Returns
    -------
    numpy.ndarray
        Labels of ``masks``' dtype, numbered 1..n without gaps.
    """
    from skimage.segmentation import relabel_sequential

    masks = np.asarray(masks)
    if masks.ndim != 2:
        raise SegmentationError(f"masks must be a 2D label image, got shape {masks.shape}")
    sizes = np.bincount(masks.ravel().astype(np.int64))
    floor = np.full(sizes.size, max(0, int(min_size_px)))
    floor[_edge_ids(masks).astype(np.int64)] = max(0, int(min_edge_size_px))
    small = sizes < floor
    small[0] = False
    out = np.where(small[masks.astype(np.int64)], 0, masks).astype(masks.dtype, copy=False)
    return relabel_sequential(out)[0].astype(masks.dtype, copy=False)


def attach_ring_arcs(masks: np.ndarray, cellprob: np.ndarray, cellprob_threshold: float = 0.0,
                     wrap_fraction: float = 0.25) -> np.ndarray:
    """Give unassigned arcs of a host ring to the ring piece they continue.

    Where a cell-in-cell host ring is thin, Cellpose often keeps one piece of
    it (a crescent hugging the inner cell) and leaves the rest of the ring
    unassigned although the network calls it foreground: too thin to survive
    :func:`recover_unassigned`'s opening. Here each connected region of
    unassigned foreground (cell probability above ``cellprob_threshold``) that
    wraps around an object *A* (at least ``wrap_fraction`` of the region's
    boundary borders *A*) and touches another object *B* that wraps around *A*
    too (at least ``wrap_fraction`` of *B*'s boundary borders *A*) is added to
    *B* (to the one it shares most boundary with). A halo around a lone cell
    has no such *B* and stays background; nothing becomes a new object.

    Parameters
    ----------
    masks : numpy.ndarray
        (Y, X) integer labels (0 = background); not modified.
    cellprob : numpy.ndarray
        (Y, X) cell-probability logits of the same frame.
    cellprob_threshold : float, optional
        Foreground threshold (the one the masks were made with).
    wrap_fraction : float, optional
        Threshold in (0, 1], as in :func:`join_split_rings`.

    Returns
    -------
    numpy.ndarray
        Labels of ``masks``' dtype (a copy), the same ids.
    """
    from scipy import ndimage as ndi

    from livescreen.features import boundary_contacts

    masks = np.asarray(masks)
    cellprob = np.asarray(cellprob)
    if masks.ndim != 2 or masks.shape != cellprob.shape:
        raise SegmentationError(f"masks {masks.shape} and cell probability {cellprob.shape} "
                                "must be 2D arrays of the same shape")
    if not 0 < wrap_fraction <= 1:
        raise SegmentationError("wrap_fraction must be in (0, 1]")
    out = masks.copy()
    arcs, n = ndi.label((cellprob > cellprob_threshold) & (masks == 0))
    if n == 0 or np.count_nonzero(np.unique(masks)) < 2:
        return out
    base = int(masks.max())
    both = np.where(arcs > 0, arcs.astype(np.int64) + base, masks.astype(np.int64))
    total, pairs, counts = boundary_contacts(both)
    edge = total.size - 1
    shared = {(int(a), int(b)): int(c) for (a, b), c in zip(pairs, counts, strict=True)
              if 0 < b != edge}
    objects: dict[int, list[int]] = {}
    for a, b in shared:
        if a > base and b <= base:
            objects.setdefault(a, []).append(b)
    lut = np.zeros(n + 1, np.int64)
    for arc, objs in objects.items():
        hugged = [a for a in objs if shared[(arc, a)] >= wrap_fraction * total[arc]]
        hosts = [b for b in objs for a in hugged
                 if b != a and shared.get((b, a), 0) >= wrap_fraction * total[b]]
        if hosts:
            lut[arc - base] = max(hosts, key=lambda b: shared[(arc, b)])
    sel = lut[arcs] > 0
    out[sel] = lut[arcs][sel].astype(out.dtype, copy=False)
    return out


def join_split_rings(masks: np.ndarray, gap_px: float = 2.0, enclosed_fraction: float = 0.8,
                     wrap_fraction: float = 0.25) -> np.ndarray:
    """Join the pieces of a cell-in-cell host ring that Cellpose split around its inner cell.

    The flows of a ring-shaped host run around its hole, and Cellpose's
    dynamics often send the two halves of the ring to different sinks: the
    host comes out as two or three crescents hugging the inner cell. Here an
    object *A* is taken as an inner cell split around when at least two
    neighbours each wrap around it (at least ``wrap_fraction`` of the
    neighbour's own boundary borders *A*; a neighbouring ordinary cell shares
    a short, flat interface, ~10-20 % of its boundary) and these wrapping
    neighbours together cover at least ``enclosed_fraction`` of *A*'s boundary
    (*A* is enclosed, with almost no background or image edge around it).
    Those neighbours become one object. Gaps up to ``gap_px`` (the dark rim
    of a vacuole) are closed before measuring; the masks themselves are not grown.

    Parameters
    ----------
    masks : numpy.ndarray
        (Y, X) integer labels (0 = background); not modified.
    gap_px : float, optional
        Gap between objects closed before measuring, in pixels.
    enclosed_fraction, wrap_fraction : float, optional
        Thresholds in (0, 1] (see above). The defaults were chosen on held-out
        simulated frames (docs/segmentation.md, "Split host rings").

    Returns
    -------
    numpy.ndarray
        Labels of ``masks``' dtype, numbered 1..n without gaps; the input is
        returned relabelled only where pieces were joined (otherwise a copy).
    """
    from skimage.segmentation import expand_labels, relabel_sequential

    from livescreen.features import boundary_contacts

    masks = np.asarray(masks)
    if masks.ndim != 2:
        raise SegmentationError(f"masks must be a 2D label image, got shape {masks.shape}")
    if not (0 < enclosed_fraction <= 1 and 0 < wrap_fraction <= 1):
        raise SegmentationError("enclosed_fraction and wrap_fraction must be in (0, 1]")
    out = masks.copy()
    if np.count_nonzero(np.unique(masks)) < 3:
        return out
    grown = expand_labels(masks, distance=float(gap_px)) if gap_px > 0 else masks
    total, pairs, counts = boundary_contacts(grown)
    edge = total.size - 1
    shared = {(int(a), int(b)): int(n) for (a, b), n in zip(pairs, counts, strict=True)
              if b != edge and b > 0}
    neighbours: dict[int, list[int]] = {}
    for a, b in shared:
        neighbours.setdefault(a, []).append(b)
    parent = np.arange(edge + 1)
    used: set[int] = set()
    for inner, nbs in neighbours.items():
        wrap = [b for b in nbs if shared[(b, inner)] >= wrap_fraction * total[b]]
        if len(wrap) < 2 or inner in used or used.intersection(wrap):
            continue
        if sum(shared[(inner, b)] for b in wrap) < enclosed_fraction * total[inner]:
            continue
        parent[wrap] = min(wrap)
        used.update(wrap)
        used.add(inner)
    if not used:
        return out
    joined = parent[masks.astype(np.int64)]
    return relabel_sequential(joined)[0].astype(masks.dtype, copy=False)


def postprocess_masks(masks: np.ndarray, cellprob: np.ndarray, params) -> np.ndarray:
    """The post-processing steps ``params`` asks for, in order (stage and reference alike).

    Parameters
    ----------
    masks : numpy.ndarray
        (Y, X) Cellpose labels; not modified.
    cellprob : numpy.ndarray
        (Y, X) cell-probability logits of the same frame.
    params : livescreen.segment.backend.EvalParams
        ``min_edge_size_px`` (the masks were made with the smaller of it and
        ``min_size_px``: interior objects below ``min_size_px`` are removed
        here), ``recover_unassigned`` (then ``cellprob_threshold``,
        ``min_size_px``, ``min_edge_size_px``) and ``join_rings_gap_px``
        (:func:`attach_ring_arcs`, then :func:`join_split_rings`).

    Returns
    -------
    numpy.ndarray
        Labels of ``masks``' dtype.
    """
    out = masks
    edge = params.min_edge_size_px
    if edge is not None and edge < params.min_size_px:
        out = remove_small_objects(out, params.min_size_px, edge)
    if params.recover_unassigned:
        out = recover_unassigned(out, cellprob, params.cellprob_threshold, params.min_size_px,
                                 edge)
    if params.join_rings_gap_px is not None:
        out = attach_ring_arcs(out, cellprob, params.cellprob_threshold)
        out = join_split_rings(out, params.join_rings_gap_px)
    return out
