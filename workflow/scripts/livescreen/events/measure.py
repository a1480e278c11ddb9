"""Per-frame mask measurements: effector-target contacts, target enclosure, background.

Everything here is vectorised over the objects of one frame (distance
transforms via :func:`skimage.segmentation.expand_labels`, pair counting with
:func:`numpy.unique`); :func:`measure_site` loops over frames only, reading
the movie one frame at a time.

Cellpose labels of one population never overlap, so an inner cell is never
"inside" its host's mask: enclosure is measured on the host's *filled* outline
and on the boundary the two share after closing gaps of up to
``cell_in_cell.gap_um`` (a dark vacuole rim between the cells).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from skimage.segmentation import expand_labels

from livescreen.features import boundary_contacts
from livescreen.track import relink

log = logging.getLogger(__name__)

CONTACT_COLUMNS = ["frame", "target_track_id", "effector_track_id", "contact_px"]
ENCLOSURE_COLUMNS = ["frame", "inner_track_id", "host_track_id", "boundary_fraction",
                     "inside_fraction", "signal_fraction"]
#: dtypes of a frame's enclosure table (:data:`ENCLOSURE_COLUMNS` without ``frame``)
ENCLOSURE_DTYPES = {"inner_track_id": np.int64, "host_track_id": np.int64,
                     "boundary_fraction": float, "inside_fraction": float,
                     "signal_fraction": float}
#: a target covering at least this share of the signal ring is the host
#: (:func:`frame_signal_enclosures`); below it the ring counts as unsegmented
SIGNAL_HOST_MIN_SHARE = 0.25
BACKGROUND_COLUMNS = ["frame", "channel", "background", "noise"]
MERGER_COLUMNS = ["frame", "ended_track_id", "into_track_id", "last_frame", "cover"]
BIRTH_COLUMNS = ["track_id", "frame", "born_in_track_id", "cover"]
SIGNAL_COLUMNS = ["frame", "effector_track_id", "target_signal", "n_px"]


def _check_frame(lab: np.ndarray, name: str) -> np.ndarray:
    lab = np.asarray(lab)
    if lab.ndim != 2:
        raise ValueError(f"{name} must be a (Y, X) label image, got shape {lab.shape}")
    if lab.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integer labels, got {lab.dtype}")
    return lab


def _grow(lab: np.ndarray, distance_px: float) -> np.ndarray:
    return expand_labels(lab, distance=distance_px) if distance_px > 0 else lab


def frame_contacts(target: np.ndarray, effector: np.ndarray, gap_px: float) -> pd.DataFrame:
    """Effector-target pairs whose masks lie within ``gap_px`` of each other in one frame.

    Parameters
    ----------
    target, effector : (Y, X) int arrays
        Label images of the two populations (values = track ids, 0 = background).
        Not modified.
    gap_px : float
        Largest boundary-to-boundary gap (pixels) that still counts as contact;
        0 = the masks must overlap (labels of two populations may overlap).

    Returns
    -------
    pandas.DataFrame
        ``target_track_id``, ``effector_track_id``, ``contact_px`` (effector
        pixels within the gap of, or on, that target), one row per pair.
    """
    target = _check_frame(target, "target")
    effector = _check_frame(effector, "effector")
    if target.shape != effector.shape:
        raise ValueError(f"label shapes differ: {target.shape} vs {effector.shape}")
    if not effector.any() or not target.any():
        return pd.DataFrame({c: pd.Series(dtype=np.int64) for c in CONTACT_COLUMNS[1:]})
    grown = _grow(target, gap_px)
    m = (effector > 0) & (grown > 0)
    t_ids = grown[m].astype(np.int64)
    e_ids = effector[m].astype(np.int64)
    if e_ids.size == 0:
        return pd.DataFrame({c: pd.Series(dtype=np.int64) for c in CONTACT_COLUMNS[1:]})
    base = int(e_ids.max()) + 1
    uniq, counts = np.unique(t_ids * base + e_ids, return_counts=True)
    return pd.DataFrame({"target_track_id": uniq // base, "effector_track_id": uniq % base,
                         "contact_px": counts.astype(np.int64)})


#: An inner cell cut by the image edge (with its host cut too) has its edge pixels left
#: out of its boundary when they are at most this fraction of it. An inner cell
#: half-way into a host at the edge has ~30-35 % of its outline on the edge; a
#: larger share is a sliver whose surroundings are mostly unknown. On the 15 demo
#: sites (true labels; cell-in-cell TP/FP of 60 true): 0.25 50/6, 0.3 52/5,
#: 0.35 54/4, 0.4 54/8, 0.5 55/16 (docs/events.md).
EDGE_CUT_MAX_FRACTION = 0.35


def frame_enclosures(target: np.ndarray, gap_px: float, boundary_fraction: float,
                     inside_fraction: float) -> pd.DataFrame:
    """Targets enclosed by another target in one frame.

    Gaps up to ``gap_px`` between cells are first closed (each background pixel
    goes to the nearest label within that distance). A target *a* is enclosed
    by *b* when at least ``boundary_fraction`` of *a*'s outer boundary (4-
    neighbour pixel edges) borders *b*, or at least ``inside_fraction`` of
    *a*'s pixels lie inside *b*'s filled outline. Where *a* and *b* are both
    cut by the image edge, what lies beyond is unknown: *a*'s edge pixels are
    left out of its boundary when they are at most :data:`EDGE_CUT_MAX_FRACTION`
    of it. A host ring labelled as two or three pieces, none enclosing *a*
    alone, encloses it together (:func:`_split_host_enclosures`).

    Parameters
    ----------
    target : (Y, X) int array
        Target labels (track ids). Not modified.
    gap_px : float
        Gap closed before measuring (pixels).
    boundary_fraction, inside_fraction : float
        Thresholds in (0, 1].

    Returns
    -------
    pandas.DataFrame
        ``inner_track_id``, ``host_track_id``, ``boundary_fraction``,
        ``inside_fraction`` for every pair passing either threshold, and
        ``signal_fraction`` (NaN: see :func:`frame_signal_enclosures`).
    """
    target = _check_frame(target, "target")
    empty = _enclosure_frame([])
    if np.count_nonzero(np.unique(target)) < 2:
        return empty
    grown = _grow(target, gap_px).astype(np.int64)
    # boundary edges between different labels; edge = the world beyond the image edge
    total, pairs, pair_n = boundary_contacts(grown)
    edge = total.size - 1
    total = total.astype(float)
    pa_, pb_ = pairs[:, 0], pairs[:, 1]
    at_edge = np.bincount(pa_[pb_ == edge], weights=pair_n[pb_ == edge], minlength=edge + 1)
    ok = (pb_ > 0) & (pb_ != edge)
    pa_, pb_, pair_n = pa_[ok], pb_[ok], pair_n[ok]
    # the edge is discounted for an inner cell only when its host is cut by the
    # edge too and the cut is at most EDGE_CUT_MAX_FRACTION of the inner's boundary
    cut = (at_edge[pa_] <= EDGE_CUT_MAX_FRACTION * total[pa_]) & (at_edge[pb_] > 0)
    bfrac = pair_n / np.where(cut, total[pa_] - at_edge[pa_], total[pa_])
    rows = {(int(i), int(h)): [float(f), 0.0]
            for i, h, f in zip(pa_, pb_, bfrac, strict=True)}
    # filled outlines: candidate hosts whose bounding box contains the inner's
    lab = np.pad(grown, 1)
    slices = ndi.find_objects(lab)
    area = np.bincount(lab.ravel(), minlength=edge + 1)
    ids = np.array([i + 1 for i, s in enumerate(slices) if s is not None], dtype=np.int64)
    if ids.size >= 2:
        box = np.array([[slices[i - 1][0].start, slices[i - 1][0].stop, slices[i - 1][1].start,
                         slices[i - 1][1].stop] for i in ids])
        inside = ((box[:, None, 0] >= box[None, :, 0]) & (box[:, None, 1] <= box[None, :, 1])
                  & (box[:, None, 2] >= box[None, :, 2]) & (box[:, None, 3] <= box[None, :, 3]))
        np.fill_diagonal(inside, False)
        filled_cache: dict[int, np.ndarray] = {}
        for ii, hh in zip(*np.nonzero(inside), strict=False):
            inner, host = int(ids[ii]), int(ids[hh])
            sl = slices[host - 1]
            if host not in filled_cache:
                filled_cache[host] = ndi.binary_fill_holes(lab[sl] == host)
            frac = np.count_nonzero(filled_cache[host] & (lab[sl] == inner)) / area[inner]
            rows.setdefault((inner, host), [0.0, 0.0])[1] = float(frac)
    out = [(i, h, f[0], f[1], np.nan) for (i, h), f in rows.items()
           if f[0] >= boundary_fraction or f[1] >= inside_fraction]
    wrap = pair_n >= SPLIT_HOST_WRAP * total[pa_]
    wraps = set(zip(pa_[wrap].tolist(), pb_[wrap].tolist(), strict=True))
    out += _split_host_enclosures(lab, slices, area, rows, {o[0] for o in out},
                                  boundary_fraction, inside_fraction, wraps)
    return _enclosure_frame(out)


def _enclosure_frame(rows: list[tuple]) -> pd.DataFrame:
    """One frame's enclosure rows as a table of :data:`ENCLOSURE_DTYPES` (also when empty)."""
    return pd.DataFrame(rows, columns=list(ENCLOSURE_DTYPES)).astype(ENCLOSURE_DTYPES)


#: share of a ring piece's own outline that borders the inner cell when the
#: piece wraps around it (a crescent: about half; an ordinary neighbour shares
#: a short, flat interface, ~10-20 %); the threshold of the segmentation's
#: ``join_split_rings`` (``livescreen.segment.postprocess``)
SPLIT_HOST_WRAP = 0.25
#: most pieces a host ring is read from (as ``join_split_rings``: two or three)
SPLIT_HOST_MAX_PIECES = 3


def _split_host_enclosures(lab: np.ndarray, slices: list, area: np.ndarray,
                           rows: Mapping[tuple[int, int], list[float]], enclosed: set[int],
                           boundary_fraction: float, inside_fraction: float,
                           wraps: set[tuple[int, int]] = frozenset()) -> list[tuple]:
    """Enclosures by a host ring labelled as two or three pieces (crescents).

    An inner cell not enclosed by any single target is enclosed by the two
    (else three, :data:`SPLIT_HOST_MAX_PIECES`) that border most of it when
    together they border at least ``boundary_fraction`` of its outline and
    either at least ``inside_fraction`` of it lies inside their joint filled
    outline, or each of them wraps around it (``(piece, inner)`` in
    ``wraps``: at least :data:`SPLIT_HOST_WRAP` of the piece's own outline
    borders the inner cell). Two neighbours beside a cell neither close
    around it nor wrap around it; the pieces of a ring that is open in one
    place (the inner cell's mask reaching the ring's outer edge there, or
    the image edge) wrap around it without closing. The host is the piece
    bordering most of it.
    """
    by_inner: dict[int, list[tuple[float, int]]] = {}
    for (i, h), f in rows.items():
        if i not in enclosed and f[0] > 0:
            by_inner.setdefault(i, []).append((f[0], h))
    out = []
    for i, hs in by_inner.items():
        hs = sorted(hs, reverse=True)[:SPLIT_HOST_MAX_PIECES]
        for k in range(2, len(hs) + 1):
            fs, pieces = zip(*hs[:k], strict=True)
            if sum(fs) < boundary_fraction:
                continue
            sl = tuple(slice(min(s[d].start for s in (slices[h - 1] for h in pieces)),
                             max(s[d].stop for s in (slices[h - 1] for h in pieces)))
                       for d in (0, 1))
            filled = ndi.binary_fill_holes(np.isin(lab[sl], pieces))
            frac = np.count_nonzero(filled & (lab[sl] == i)) / area[i]
            if frac >= inside_fraction or all((h, i) in wraps for h in pieces):
                out.append((i, pieces[0], float(sum(fs)), float(frac), np.nan))
                break
    return out


def frame_signal_enclosures(image: np.ndarray, target: np.ndarray, effector: np.ndarray,
                            background: float, *, ring_px: float, level: float,
                            min_fraction: float, others_max: float
                            ) -> pd.DataFrame:
    """Targets surrounded by target-channel signal in one frame (host ring unsegmented).

    A host ring around an internalised cell is thin and often dimmer than a
    whole cell; Cellpose may leave it unlabelled, or label only part of it,
    while the network and the eye still see it. Around each target *a* the
    ring of pixels within ``ring_px`` of its mask (effector pixels left out)
    is checked: *a* is enclosed when
    at least ``min_fraction`` of the ring is bright (above ``background +
    level * (median target intensity - background)``) and target cells
    other than the one covering most of the ring cover at most
    ``others_max`` of it (a cell packed among several neighbours is not
    enclosed). The host is that most-covering target when it covers at
    least a quarter of the ring, else 0 (the ring is not segmented). Objects
    whose ring leaves the image are skipped.

    Parameters
    ----------
    image : (Y, X) array
        Target channel. Not modified.
    target, effector : (Y, X) int arrays
        Track-id labels. Not modified.
    background : float
        Background level of the target channel (:func:`frame_background`).
    ring_px : float
        Ring width (pixels).
    level, min_fraction, others_max : float
        Thresholds in (0, 1].

    Returns
    -------
    pandas.DataFrame
        ``inner_track_id``, ``host_track_id``, ``boundary_fraction`` (the host's
        share of the ring), ``inside_fraction`` (0.0), ``signal_fraction``.
    """
    target = _check_frame(target, "target")
    image = np.asarray(image, dtype=float)
    empty = _enclosure_frame([])
    if image.shape != target.shape or not target.any():
        return empty
    cell = float(np.median(image[target > 0]))
    if not cell > background:
        return empty
    bright = image > background + level * (cell - background)
    free = np.asarray(effector) == 0
    pad = int(np.ceil(ring_px)) + 1
    h, w = target.shape
    rows = []
    for i, sl in enumerate(ndi.find_objects(target)):
        if sl is None:
            continue
        y0, y1 = sl[0].start - pad, sl[0].stop + pad
        x0, x1 = sl[1].start - pad, sl[1].stop + pad
        if y0 < 0 or x0 < 0 or y1 > h or x1 > w:
            continue
        box = (slice(y0, y1), slice(x0, x1))
        lab = target[box]
        d = ndi.distance_transform_edt(lab != i + 1)
        ring = (d > 0) & (d <= ring_px) & free[box]
        n = np.count_nonzero(ring)
        if n == 0:
            continue
        frac = np.count_nonzero(bright[box] & ring) / n
        if frac < min_fraction:
            continue
        ids, cnt = np.unique(lab[ring], return_counts=True)
        cnt, ids = cnt[ids > 0], ids[ids > 0]
        top = int(np.argmax(cnt)) if cnt.size else -1
        share = cnt[top] / n if cnt.size else 0.0
        if (cnt.sum() / n if cnt.size else 0.0) - share > others_max:
            continue
        host = int(ids[top]) if share >= SIGNAL_HOST_MIN_SHARE else 0
        rows.append((i + 1, host, float(share), 0.0, float(frac)))
    return _enclosure_frame(rows)


def _depth_in_image(mask: np.ndarray, cut: tuple[bool, bool, bool, bool],
                    depth_px: float) -> np.ndarray:
    """Distance of each mask pixel to the mask's outline inside the image.

    Parameters
    ----------
    mask : (Y, X) bool array
        One object in its box (a pixel of background around it where the
        image allows).
    cut : (bool, bool, bool, bool)
        Whether the mask touches the image's top, bottom, left and right edge
        there; the mask is taken to go on beyond those edges.
    depth_px : float
        Depth that matters (the mask is extended by more than this).

    Returns
    -------
    (Y, X) float array
    """
    pad = int(np.ceil(depth_px)) + 1
    widths = ((pad * cut[0], pad * cut[1]), (pad * cut[2], pad * cut[3]))
    depth = ndi.distance_transform_edt(np.pad(mask, widths, mode="edge"))
    return depth[widths[0][0]:widths[0][0] + mask.shape[0],
                 widths[1][0]:widths[1][0] + mask.shape[1]]


def frame_core_enclosures(image: np.ndarray, target: np.ndarray, background: float, *,
                          level: float, rim_min: float, rim_max: float, depth_px: float,
                          min_fraction: float) -> pd.DataFrame:
    """Targets whose own mask holds a bright core inside a dim rim (host ring merged in).

    When Cellpose labels an internalised cell and its host's ring as one
    object, no second mask encloses it and no unlabelled ring surrounds it:
    the ring is inside its mask. Seen from above, an inner cell lies under
    (and over) its host's cytoplasm and is brighter than the thin host ring
    around it. The object is an enclosed cell when the largest connected
    region of its pixels brighter than ``level`` x its own 90th percentile
    (above background) covers at least ``min_fraction`` of the mask and
    lies at least ``depth_px`` inside the mask's outline everywhere, and the
    pixels closer than ``depth_px`` to the outline (the host ring) have a
    median between ``rim_min`` and ``rim_max`` x that percentile. A free
    cell's bright cytoplasm reaches its outline (its dim part is the
    nucleus, in the middle); a rim darker than ``rim_min`` is a cell the
    host is still wrapping (its ring thin), before the engulfment is
    complete. The host is
    not segmented apart: ``host_track_id`` is 0. Where the image edge cuts
    the mask, the cell goes on beyond it: depth and rim are measured from
    the outline inside the image only (:func:`_depth_in_image`).

    Parameters
    ----------
    image : (Y, X) array
        Target channel. Not modified.
    target : (Y, X) int array
        Track-id labels. Not modified.
    background : float
        Background level of the target channel (:func:`frame_background`).
    level : float
        Core brightness, as a share of the object's 90th percentile (0, 1).
    rim_min, rim_max : float
        Range of the rim's median brightness, same units.
    depth_px : float
        Rim width and least depth of the core inside the outline (pixels).
    min_fraction : float
        Least share of the mask in the core.

    Returns
    -------
    pandas.DataFrame
        ``inner_track_id``, ``host_track_id`` (0), ``boundary_fraction``
        (0.0), ``inside_fraction`` (the core's share of the mask),
        ``signal_fraction`` (NaN).
    """
    target = _check_frame(target, "target")
    image = np.asarray(image, dtype=float)
    if image.shape != target.shape or not target.any():
        return _enclosure_frame([])
    h, w = target.shape
    rows = []
    for i, sl in enumerate(ndi.find_objects(target)):
        if sl is None:
            continue
        box = (slice(max(sl[0].start - 1, 0), min(sl[0].stop + 1, h)),
               slice(max(sl[1].start - 1, 0), min(sl[1].stop + 1, w)))
        m = target[box] == i + 1
        v = image[box] - background
        top = float(np.percentile(v[m], 90))
        if not top > 0:
            continue
        cl, n = ndi.label(m & (v > level * top))
        if n == 0:
            continue
        size = np.bincount(cl.ravel())
        size[0] = 0
        k = int(np.argmax(size))
        n_px = np.count_nonzero(m)
        if size[k] < min_fraction * n_px:
            continue
        depth = _depth_in_image(m, (sl[0].start == 0, sl[0].stop == h, sl[1].start == 0,
                                    sl[1].stop == w), depth_px)
        rim = m & (depth < depth_px)
        if depth[cl == k].min() < depth_px or not rim.any() \
                or not rim_min * top <= np.median(v[rim]) <= rim_max * top:
            continue
        rows.append((i + 1, 0, 0.0, float(size[k] / n_px), np.nan))
    return _enclosure_frame(rows)


def frame_background(image: np.ndarray, occupied: np.ndarray, margin_px: int = 2,
                     step: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Background level and noise per channel of one frame.

    Parameters
    ----------
    image : (C, Y, X) array
        One movie frame. Not modified.
    occupied : (Y, X) bool array
        Pixels of any cell (both populations).
    margin_px : int, optional
        Pixels this close to a cell are excluded (blur of the cells' light).
    step : int, optional
        Sub-sampling stride (speed; a median does not need every pixel).

    Returns
    -------
    background, noise : (C,) float arrays
        Median and 1.4826 x MAD of the free pixels (NaN when there are none).
    """
    image = np.asarray(image)
    far = ~ndi.binary_dilation(occupied, iterations=margin_px) if margin_px else ~occupied
    far = far[::step, ::step]
    if not far.any():
        n_c = image.shape[0]
        return np.full(n_c, np.nan), np.full(n_c, np.nan)
    vals = image[:, ::step, ::step][:, far].astype(float)
    med = np.median(vals, axis=1)
    mad = 1.4826 * np.median(np.abs(vals - med[:, None]), axis=1)
    return med, np.maximum(mad, 1e-6)


def frame_effector_signal(target_channel: np.ndarray, target: np.ndarray, effector: np.ndarray,
                          away_px: float, min_px: int = 5) -> pd.DataFrame:
    """Target-channel mean of each effector over its pixels away from every target.

    Nibbled membrane makes the effector carry the target's label. Pixels of
    the effector within ``away_px`` of a target (contact, blur of the target's
    own light) are left out, so the measure can be taken during a contact.

    Parameters
    ----------
    target_channel : (Y, X) array
        The target channel of one frame (raw; background not subtracted). Not modified.
    target, effector : (Y, X) int arrays
        Target and effector labels (track ids) of the frame.
    away_px : float
        Effector pixels closer than this to any target pixel are left out.
    min_px : int, optional
        Effectors with fewer remaining pixels get no value.

    Returns
    -------
    pandas.DataFrame
        ``effector_track_id``, ``target_signal`` (mean), ``n_px``.
    """
    target = _check_frame(target, "target")
    effector = _check_frame(effector, "effector")
    image = np.asarray(target_channel, dtype=float)
    if image.shape != target.shape or effector.shape != target.shape:
        raise ValueError(f"target channel {image.shape}, target {target.shape} and effector "
                         f"{effector.shape} labels must have the same shape")
    far = (ndi.distance_transform_edt(target == 0) > away_px) if target.any() \
        else np.ones(target.shape, bool)
    sel = (effector > 0) & far
    ids = effector[sel].astype(np.int64)
    n = np.bincount(ids, minlength=1)
    tot = np.bincount(ids, weights=image[sel], minlength=1)
    keep = np.flatnonzero(n >= max(1, int(min_px)))
    keep = keep[keep > 0]
    return pd.DataFrame({"effector_track_id": keep.astype(np.int64),
                         "target_signal": tot[keep] / n[keep], "n_px": n[keep].astype(np.int64)})


def _add_unenclosed(rows: pd.DataFrame, more: pd.DataFrame) -> pd.DataFrame:
    """A frame's enclosure rows plus those of ``more`` whose inner target has none yet."""
    more = more[~more["inner_track_id"].isin(rows["inner_track_id"])]
    if not len(more):
        return rows
    return pd.concat([rows, more], ignore_index=True) if len(rows) else more


def measure_site(target_labels: np.ndarray, effector_labels: np.ndarray, movie=None, *,
                 contact_gap_px: float, cic_gap_px: float, cic_boundary_fraction: float,
                 cic_inside_fraction: float, target_channel: int | None = None,
                 signal_away_px: float = 2.0, cic_signal: Mapping[str, float] | None = None,
                 cic_core: Mapping[str, float] | None = None) -> dict[str, pd.DataFrame]:
    """Run the per-frame measurements over a site.

    Parameters
    ----------
    target_labels, effector_labels : (T, Y, X) int arrays
        Track-id label stacks (``track/{population}_track_labels.tif``).
        Effector labels may be all zero (no effectors).
    movie : (T, C, Y, X) array or livescreen.imageio.Movie, optional
        Raw movie for background levels (read one frame at a time).
    contact_gap_px, cic_gap_px, cic_boundary_fraction, cic_inside_fraction : float
        See :func:`frame_contacts` and :func:`frame_enclosures`.
    target_channel : int, optional
        Channel index of the target label in the movie (effector signal).
    signal_away_px : float, optional
        See :func:`frame_effector_signal`.
    cic_signal : mapping, optional
        ``ring_px, level, min_fraction, others_max`` of
        :func:`frame_signal_enclosures`: targets
        not enclosed by a host mask but surrounded by target-channel signal
        are enclosed too. Needs the movie and ``target_channel``; None: off.
    cic_core : mapping, optional
        ``level, rim_min, rim_max, depth_px, min_fraction`` of
        :func:`frame_core_enclosures`: targets enclosed by no other route
        whose mask holds a bright core inside a dim rim (inner cell and host
        ring segmented as one) are enclosed too (host 0). Needs the movie and
        ``target_channel``; None: off.

    Returns
    -------
    dict
        ``contacts`` (:data:`CONTACT_COLUMNS`), ``enclosures``
        (:data:`ENCLOSURE_COLUMNS`), ``background`` (:data:`BACKGROUND_COLUMNS`;
        empty without a movie or when its frame size differs), ``effector_signal``
        (:data:`SIGNAL_COLUMNS`; empty without a movie or target channel).
    """
    target_labels = np.asarray(target_labels)
    effector_labels = np.asarray(effector_labels)
    if target_labels.ndim != 3 or target_labels.shape != effector_labels.shape:
        raise ValueError(f"label stacks must be (T, Y, X) of equal shape, got "
                         f"{target_labels.shape} and {effector_labels.shape}")
    n_t = target_labels.shape[0]
    use_movie = movie is not None and tuple(movie.shape[2:]) == target_labels.shape[1:]
    if movie is not None and not use_movie:
        log.warning("movie %s and labels %s differ in Y/X: no background levels",
                    tuple(movie.shape), target_labels.shape)
    contacts, encl, bg, sig = [], [], [], []
    for t in range(n_t):
        tl, el = target_labels[t], effector_labels[t]
        c = frame_contacts(tl, el, contact_gap_px)
        if len(c):
            contacts.append(c.assign(frame=t))
        e = frame_enclosures(tl, cic_gap_px, cic_boundary_fraction, cic_inside_fraction)
        if use_movie and t < movie.shape[0]:
            img = movie.frame(t) if hasattr(movie, "frame") else np.asarray(movie[t])
            med, noise = frame_background(img, (tl > 0) | (el > 0))
            has_target = target_channel is not None and 0 <= target_channel < img.shape[0]
            if cic_signal is not None and has_target:
                e = _add_unenclosed(e, frame_signal_enclosures(
                    img[target_channel], tl, el, float(med[target_channel]), **cic_signal))
            if cic_core is not None and has_target:
                e = _add_unenclosed(e, frame_core_enclosures(
                    img[target_channel], tl, float(med[target_channel]), **cic_core))
            bg.append(pd.DataFrame({"frame": t, "channel": np.arange(len(med)),
                                    "background": med, "noise": noise}))
            if has_target and el.any():
                es = frame_effector_signal(img[target_channel], tl, el, signal_away_px)
                if len(es):
                    sig.append(es.assign(frame=t))
        if len(e):
            encl.append(e.assign(frame=t))

    def _cat(parts, cols, ints):
        if not parts:
            return pd.DataFrame({c: pd.Series(dtype=np.int64 if c in ints else float)
                                 for c in cols})
        return pd.concat(parts, ignore_index=True)[cols]

    return {"contacts": _cat(contacts, CONTACT_COLUMNS, CONTACT_COLUMNS),
            "enclosures": _cat(encl, ENCLOSURE_COLUMNS, ENCLOSURE_COLUMNS[:3]),
            "background": _cat(bg, BACKGROUND_COLUMNS, ["frame", "channel"]),
            "effector_signal": _cat(sig, SIGNAL_COLUMNS,
                                    ["frame", "effector_track_id", "n_px"])}


def _masks_in_frame(frame: np.ndarray, ids):
    """``(id, bounding box, mask within it)`` of each of ``ids`` present in one label frame."""
    slices = ndi.find_objects(frame)
    for x in ids:
        x = int(x)
        if x > len(slices) or slices[x - 1] is None:
            continue
        box = slices[x - 1]
        yield x, box, frame[box] == x


def _top_object(labels: np.ndarray, frame: int, box, mask: np.ndarray) -> tuple[int, float]:
    """The object covering most of ``mask`` (within ``box``) in ``frame``, and its share."""
    under = labels[frame][box][mask]
    ids, cnt = np.unique(under[under > 0], return_counts=True)
    if not ids.size:
        return 0, 0.0
    k = int(np.argmax(cnt))
    return int(ids[k]), float(cnt[k]) / np.count_nonzero(mask)


#: a track that lived only while another was missing stood in for it when its
#: first mask overlaps the other's last one by at least this IoU: the same cell
#: moved on (an evader at speed: 0.35). Host and inner cell exchanging ids
#: through a one-frame track begin 20-25 px apart (IoU 0) and stay mergers.
STAND_IN_MIN_IOU = 0.25


#: a track whose last mask touches the image edge and is smaller than this
#: share of the object over it next (its area in its last frame up to the
#: ended track's) was a cell crossing the edge beside that object, of which
#: only a sliver was in the field: not a merger (:func:`track_mergers`). A
#: host's last mask before it merges with its inner cell is the host wrapped
#: around or beside it (at the edge on the demo and 3 held-out plates: >= 0.145
#: of the other object's area); cells leaving beside a large cell: <= 0.098
#: (docs/events.md).
EDGE_SLIVER_MAX_AREA = 0.12


def _edge_sliver(labels: np.ndarray, seen: Mapping[int, np.ndarray], box, n: int, y: int,
                 last: int) -> bool:
    """Whether ``n`` pixels in ``box`` are a sliver at the edge beside ``y``."""
    h, w = labels.shape[1:]
    if box[0].start > 0 and box[1].start > 0 and box[0].stop < h and box[1].stop < w:
        return False
    ys = seen[y]
    f = int(ys[ys <= last][-1])
    return n < EDGE_SLIVER_MAX_AREA * np.count_nonzero(labels[f] == y)


def _merger_rows(labels: np.ndarray, seen: Mapping[int, np.ndarray], x: int, last: int, box,
                 mask: np.ndarray, min_cover: float, stop: int) -> list[tuple]:
    """Rows of the merger of track ``x`` (last seen at ``last`` with ``mask``), frames < ``stop``.

    ``seen`` maps each track to the sorted frames it is present in.

    The object over ``x``'s last mask in the next frame must already have
    existed at ``last``. When that object is a track that begins in that
    very frame (a piece, such as part of a host ring labelled apart for one
    frame), the merger is read from the frame after instead: an inner cell
    moving into its host can take a frame to come under the host's mask.
    When ``x`` lived only while that object was missing (not seen again
    until after ``x`` ended) and began where the object was the frame
    before (IoU >= :data:`STAND_IN_MIN_IOU`), ``x`` was that object's own
    cell under another id: not a merger.
    """
    first = last + 1
    y, _ = _top_object(labels, first, box, mask)
    if y in seen and seen[y][0] == first and first + 1 < stop:
        first += 1
        y, _ = _top_object(labels, first, box, mask)
    if y == 0 or y == x or y not in seen or seen[y][0] > last:
        return []
    x0, ys = int(seen[x][0]), seen[y]
    if x0 > 0 and not np.any((ys >= x0) & (ys <= last)) \
            and _iou(labels[x0 - 1] == y, labels[x0] == x) >= STAND_IN_MIN_IOU:
        return []               # x stood in for y while y's track was broken
    n = np.count_nonzero(mask)
    if _edge_sliver(labels, seen, box, n, y, last):
        return []               # x crossed the image edge beside y
    rows = []
    for f in range(first, stop):
        cover = np.count_nonzero(labels[f][box][mask] == y) / n
        if cover < min_cover:
            break
        rows.append((f, x, y, last, cover))
    return rows


#: a track that shrank in each of its last two frames (without a gap), both
#: below this share of its median area, was shrinking away when it ended (a
#: cell leaving across the image edge, or fading): a neighbour lying over that
#: sliver next is not a merger (:func:`track_mergers`). One sudden drop (a
#: cell and a ring piece labelled as one, then the piece alone) does not count.
MERGER_MIN_LAST_AREA = 0.5


def _shrunk_away(tracks: pd.DataFrame) -> set[int]:
    """Tracks that shrank away before they ended (:data:`MERGER_MIN_LAST_AREA`).

    Their last three frames follow each other, the area falls at each, and
    the last two are below :data:`MERGER_MIN_LAST_AREA` of the track's median.
    A piece seen again after a gap (part of a host ring) does not count.
    """
    if "area_px" not in tracks or tracks.empty:
        return set()
    tr = tracks.sort_values(["track_id", "frame"], kind="stable")
    g = tr.groupby("track_id")
    tail = g.tail(3)
    frames = tail.groupby("track_id")["frame"].agg(list)
    areas = tail.groupby("track_id")["area_px"].agg(list)
    med = g["area_px"].median()
    out = set()
    for tid, fr in frames.items():
        a = areas[tid]
        if len(fr) == 3 and fr[2] - fr[0] == 2 and a[0] > a[1] > a[2] \
                and a[1] < MERGER_MIN_LAST_AREA * med[tid]:
            out.add(int(tid))
    return out


def track_mergers(labels: np.ndarray, tracks: pd.DataFrame, min_cover: float
                  ) -> pd.DataFrame:
    """Tracks whose cell went on inside another track's mask: two objects became one.

    When an inner cell is engulfed, Cellpose can segment it and its thin host
    ring as one object; then one of the two tracks ends although its cell is
    still there, under the other's mask. For each track that ends before the
    movie's last frame, the target covering most of its last mask in the next
    frame is found; it is a merger when that target already existed (its
    track started no later) and covers at least ``min_cover`` of the last
    mask, and it lasts for as many frames as that stays so. (When the
    target over the last mask is a track that only begins in that frame, a
    piece labelled apart for a frame, the merger is read from the frame
    after.) A track that shrank in each of its last two frames, both below
    :data:`MERGER_MIN_LAST_AREA` of its median area (``tracks``'
    ``area_px``) was shrinking away when it ended, leaving the field across
    the image edge or fading; a neighbour over that sliver is not a merger.
    Nor is a track whose last mask touches the image edge and is smaller
    than :data:`EDGE_SLIVER_MAX_AREA` of the object over it next (a cell
    crossing the edge beside a large one). Nor is a track that lived only
    while the object over its last mask was missing and began on that
    object's mask of the frame before (IoU >= :data:`STAND_IN_MIN_IOU`): a
    break in that object's track, bridged by another id.

    A track can also vanish under the other object, come back for a frame or
    a few as a piece (part of a host ring segmented apart again) and then end
    in a merger into the same object: the merger began at the first
    disappearance. Such gaps of a track (frames missing between two of its
    frames), covered by the object that the track finally merges into, are
    returned as rows of that merger too (``last_frame`` = the frame before
    the gap). A gap that is not followed by such a merger is not a merger.

    Parameters
    ----------
    labels : (T, Y, X) int array
        Target track-id labels. Not modified.
    tracks : pandas.DataFrame
        Target tracks table (``track_id``, ``frame``).
    min_cover : float
        Smallest share of the ended track's last mask under the other object.

    Returns
    -------
    pandas.DataFrame
        :data:`MERGER_COLUMNS`: one row per frame of each merger, ``cover``
        the share of the ended track's last mask (at ``last_frame``) that
        ``into_track_id``'s mask covers in ``frame``.
    """
    labels = np.asarray(labels)
    n_t = labels.shape[0]
    rows = []
    if len(tracks) and n_t > 1:
        frames = tracks[["track_id", "frame"]].drop_duplicates().sort_values(
            ["track_id", "frame"])
        seen = {int(t): g.to_numpy() for t, g in frames.groupby("track_id")["frame"]}
        last_of = pd.Series({t: int(f[-1]) for t, f in seen.items()}, dtype=np.int64)
        ended = last_of[(last_of < n_t - 1) & ~last_of.index.isin(list(_shrunk_away(tracks)))]
        for last, grp in ended.groupby(ended):
            last = int(last)
            for x, box, mask in _masks_in_frame(labels[last], grp.index.astype(int)):
                rows += _merger_rows(labels, seen, x, last, box, mask, min_cover, n_t)
        into = {(r[1], r[2]) for r in rows}
        for x, f in seen.items():
            for a in f[:-1][np.diff(f) > 1]:
                a = int(a)
                nxt = int(f[f > a][0])
                for _, box, mask in _masks_in_frame(labels[a], [x]):
                    gap = _merger_rows(labels, seen, x, a, box, mask, min_cover, nxt)
                    rows += [r for r in gap if (r[1], r[2]) in into]
    out = pd.DataFrame(rows, columns=MERGER_COLUMNS).sort_values(
        ["ended_track_id", "into_track_id", "frame"], ignore_index=True)
    return out.astype({c: np.int64 for c in MERGER_COLUMNS[:4]} | {"cover": float})


def track_births(labels: np.ndarray, tracks: pd.DataFrame) -> pd.DataFrame:
    """Where each track that starts after the first frame was born.

    For a track starting at frame ``f > 0``, the target covering most of its
    first mask in frame ``f - 1`` (``born_in_track_id``, 0 = background) and
    the share it covers. A track born inside another object's previous mask
    appeared out of it: a cell that was part of that object (an inner cell
    segmented together with its host ring and separated again), not a cell
    that moved in.

    Parameters
    ----------
    labels : (T, Y, X) int array
        Target track-id labels. Not modified.
    tracks : pandas.DataFrame
        Target tracks table (``track_id``, ``frame``).

    Returns
    -------
    pandas.DataFrame
        :data:`BIRTH_COLUMNS`, one row per track starting after frame 0.
    """
    labels = np.asarray(labels)
    rows = []
    if len(tracks):
        first = tracks.groupby("track_id")["frame"].min()
        first = first[first > 0]
        for f, grp in first.groupby(first):
            f = int(f)
            for x, box, mask in _masks_in_frame(labels[f], grp.index.astype(int)):
                ids, cnt = np.unique(labels[f - 1][box][mask], return_counts=True)
                k = int(np.argmax(np.where(ids > 0, cnt, -1)))
                host = int(ids[k]) if ids[k] > 0 else 0
                rows.append((x, f, host, float(cnt[k]) / np.count_nonzero(mask) if host else 0.0))
    out = pd.DataFrame(rows, columns=BIRTH_COLUMNS)
    return out.astype({c: np.int64 for c in BIRTH_COLUMNS[:3]} | {"cover": float})


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 0.0


def _filled(mask: np.ndarray) -> np.ndarray:
    """``mask`` with its holes filled (within its bounding box)."""
    out = mask.copy()
    sl = ndi.find_objects(mask.astype(np.uint8))
    if sl and sl[0] is not None:
        out[sl[0]] = ndi.binary_fill_holes(mask[sl[0]])
    return out


#: An enclosure swap must reduce the tracks' summed |log area ratio| by at least
#: this much (a real host/inner swap reduces it by ~2 per track: host areas are
#: several times the inner's; 0.05 and 0.2 gave the same on true labels, 0.2
#: lost one cell-in-cell on the demo's own masks).
SWAP_SIZE_MARGIN = 0.05


def _size_change(mask: np.ndarray, before: np.ndarray | None) -> float:
    """|log| of the area ratio of ``mask`` to ``before`` (0 when there is no ``before``)."""
    if before is None:
        return 0.0
    return abs(float(np.log(max(np.count_nonzero(mask), 1) / max(np.count_nonzero(before), 1))))


def targets_under_effectors(target_labels: np.ndarray, effector_labels: np.ndarray,
                            max_fraction: float) -> pd.DataFrame:
    """Target objects lying mostly under effector masks.

    An effector that nibbled a target carries the target's label, which shows
    in the target channel and can be segmented as a small "target" inside
    the effector. Such an object is not a cell.

    Parameters
    ----------
    target_labels, effector_labels : (T, Y, X) int arrays
        Track-id labels of the two populations (not modified).
    max_fraction : float
        Objects with at least this fraction of their pixels on effector
        pixels are returned.

    Returns
    -------
    pandas.DataFrame
        ``frame, track_id`` of those objects.
    """
    target_labels = np.asarray(target_labels)
    effector_labels = np.asarray(effector_labels)
    if target_labels.shape != effector_labels.shape:
        raise ValueError(f"label stacks differ in shape: {target_labels.shape} vs "
                         f"{effector_labels.shape}")
    rows = []
    for t in range(target_labels.shape[0]):
        lab = target_labels[t]
        under = effector_labels[t] > 0
        if not under.any():
            continue
        total = np.bincount(lab.ravel())
        covered = np.bincount(lab[under], minlength=total.size)
        ids = np.flatnonzero((total > 0) & (covered >= max_fraction * total))
        rows += [(t, int(i)) for i in ids if i]
    return pd.DataFrame(rows, columns=["frame", "track_id"], dtype=np.int64)


def drop_objects(labels: np.ndarray, tracks: pd.DataFrame, objects: pd.DataFrame
                 ) -> tuple[np.ndarray, pd.DataFrame]:
    """Copies of ``labels`` and ``tracks`` without ``objects`` (``frame, track_id``).

    A track left without rows is no longer anyone's parent
    (:func:`livescreen.track.relink`).
    """
    if objects.empty:
        return labels, tracks
    labels = labels.copy()
    for t, g in objects.groupby("frame"):
        sel = np.isin(labels[int(t)], g["track_id"].to_numpy())
        labels[int(t)][sel] = 0
    key = pd.MultiIndex.from_frame(objects[["frame", "track_id"]])
    drop = pd.MultiIndex.from_arrays([tracks["frame"], tracks["track_id"]]).isin(key)
    return labels, relink(tracks.loc[~drop].reset_index(drop=True))


def _last_mask(crop: np.ndarray, tid: int, t: int, closed_by: int = 0,
               from_frame: int = 0) -> np.ndarray | None:
    """Filled mask of ``tid`` in its last frame up to 2 before ``t`` (None if absent).

    With ``closed_by``, in frames from ``from_frame`` on, that track's mask is
    added before filling (an open host ring read as closed over its inner cell).
    """
    for k in range(t - 1, max(-1, t - 3), -1):
        m = crop[k] == tid
        if m.any():
            if closed_by and k >= from_frame:
                m = m | (crop[k] == closed_by)
            return _filled(m)
    return None


def _ended_under(crop: np.ndarray, la: np.ndarray, t: int, last: pd.Series,
                 pair: tuple[int, int], gone: bool = False
                 ) -> tuple[int, float, np.ndarray | None]:
    """The ended track whose last mask overlaps ``la`` most.

    Candidates: tracks not in ``pair`` seen 1-2 frames before ``t`` that end
    before ``t`` (and so never come back); with ``gone``, also those absent
    at ``t`` that come back later (as a piece of the host ring).

    Returns
    -------
    track, iou, mask
        Its id, IoU with ``la`` and last mask; ``(0, 0.0, None)`` when none
        overlaps.
    """
    ended = {int(i) for k in (t - 1, t - 2) if k >= 0 for i in np.unique(crop[k])
             if i and int(i) not in pair and (last.get(int(i), t) < t or (
                 gone and not (crop[t] == i).any()))}
    best, best_iou, best_mask = 0, 0.0, None
    for c in sorted(ended):
        pc = _last_mask(crop, c, t)
        v = _iou(la, pc)
        if v > best_iou:
            best, best_iou, best_mask = c, v, pc
    return best, best_iou, best_mask


def _inner_before(crop: np.ndarray, la: np.ndarray, lb: np.ndarray, pa: np.ndarray, t: int,
                  last: pd.Series, pair: tuple[int, int], margin: float) -> tuple[int, bool]:
    """The inner cell's own track, when the host's id went over to it at frame ``t``.

    ``la`` / ``lb`` are the filled masks at ``t`` of the inner cell (carrying
    the host's id) and of the host ring (a new id, no past), ``pa`` the last
    earlier mask of the host's id. A track ``c`` that ended within 2 frames
    before ``t`` (and never comes back) is the inner cell's own track when
    the ring continues the host's earlier outline better than the inner cell
    does and better than it continues ``c``'s last mask, and when ring and
    inner cell together continue the two earlier masks (host's id -> ring,
    ``c`` -> inner cell) better, by more than ``margin`` in summed IoU, than
    the other reading does (host's id -> inner cell, ``c`` -> ring: ``c``
    was the host's own track and the inner cell kept its id). Of several
    ended tracks, the one whose last mask overlaps the inner cell most is
    tried. Sizes cannot decide here: the inner cell moves onto the host's
    earlier place, and the host, a crescent or thin ring, changes size as
    much as the inner cell does. When all holds but the first condition
    (the inner cell, moved further onto the host's place, overlaps the
    host's earlier outline as much as the ring does or more), the masks
    lean to the exchange without deciding it: the caller lets brightness
    decide (:func:`_inner_by_brightness`).

    Returns
    -------
    track : int
        The inner cell's own track id, else 0.
    decided : bool
        Whether the masks decide it (False: they only lean to the exchange).
    """
    keep, ring = _iou(la, pa), _iou(lb, pa)
    best, best_iou, pc = _ended_under(crop, la, t, last, pair)
    best_host = _iou(lb, pc) if best else 0.0
    log.debug("frame %d: ring/host %.2f, inner/host %.2f, inner/%d %.2f, ring/%d %.2f", t, ring,
              keep, best, best_iou, best, best_host)
    if ring <= best_host or ring + best_iou <= keep + best_host + margin:
        return 0, True          # the ring continues the ended track, or the other reading wins
    return best, ring > keep


#: a track that ended is the inner cell's own (:func:`_inner_by_brightness`) when
#: its brightness is closer to the inner cell's than the host's earlier
#: brightness is, by this share of the latter
BRIGHTNESS_MARGIN = 0.05


def _inner_by_brightness(crop: np.ndarray, la: np.ndarray, t: int, last: pd.Series,
                         pair: tuple[int, int], bright: pd.Series, gone: bool = False) -> int:
    """The inner cell's own track, when the host's id came back on it after a gap.

    The pattern (true labels of held-out plates, docs/events.md): in the frame
    before ``t`` inner cell and host both got new ids, and at ``t`` the host's
    id, absent then, came back on the inner cell (which jumped onto the host's
    earlier place, so masks overlap as the tracker linked them) while the
    host ring kept its new id. The cells' own brightness (target-channel
    mean, ``bright``: (track id, frame) -> mean) tells them apart: of the
    tracks that ended 1-2 frames before ``t`` and never come back, the one
    whose last mask overlaps the inner cell's ``la`` most is its own track
    when its last brightness is closer to the inner cell's at ``t`` than the
    host id's last brightness is, by :data:`BRIGHTNESS_MARGIN` of the latter.
    With ``gone``, a track absent at ``t`` that comes back later is a
    candidate too (:func:`_ended_under`), its brightness read in its last
    frame before ``t``.

    Returns
    -------
    int
        The inner cell's own track id, else 0.
    """
    a, _ = pair
    before = [k for k in (t - 2, t - 3) if k >= 0 and (a, k) in bright.index]
    if not before or (a, t) not in bright.index:
        return 0
    host_then, now = float(bright[(a, before[0])]), float(bright[(a, t)])
    best = _ended_under(crop, la, t, last, pair, gone)[0]
    seen = [k for k in (t - 1, t - 2) if (best, k) in bright.index] if best else []
    if not seen:
        return 0
    own = float(bright[(best, seen[0])])
    log.debug("frame %d: brightness inner %.1f, host before %.1f, track %d %.1f", t, now,
              host_then, best, own)
    return best if abs(now - own) + BRIGHTNESS_MARGIN * host_then < abs(now - host_then) else 0


def _apply_swaps(labels: np.ndarray, tracks: pd.DataFrame, swaps: list[tuple]
                 ) -> tuple[np.ndarray, pd.DataFrame]:
    """Copies of ``labels`` and ``tracks`` with identity swaps undone.

    Each swap ``(a, b, t, c, t0)``: from frame ``t`` on, ``a``'s masks go to
    ``c`` (the inner cell's own track) or, with ``c`` 0, to ``b``; ``b``'s go
    to ``a``; ``c``'s own later masks (pieces of the host ring) go to ``b``.
    Each cell keeps its own parent; a track started by division from one of
    them follows the masks it came from (:func:`livescreen.track.relink`).
    """
    labels = labels.copy()
    tracks = tracks.copy()
    linked = "parent_track_id" in tracks
    for a, b, t, c, t0 in swaps:
        # from t on: a's masks -> c (the inner cell's own track) or b; b's -> a;
        # c's own later masks (pieces of the host ring) -> b
        to_a = c or b
        # c comes back later only on the gap route (labels and table agree)
        rc = (tracks["track_id"] == c) & (tracks["frame"] >= t) if c else None
        c_later = rc is not None and bool(rc.any())
        seg = labels[t:]
        ma, mb = seg == a, seg == b
        mc = seg == c if c_later else None
        seg[ma], seg[mb] = to_a, a
        if c_later:
            seg[mc] = b
        if linked:      # a cell keeps its own parent; the masks' children follow the masks
            own = tracks.sort_values("frame", kind="stable").groupby("track_id")[
                "parent_track_id"].first()
            ca = (tracks["parent_track_id"] == a) & ~tracks["track_id"].isin((a, b, c))
            cb = (tracks["parent_track_id"] == b) & ~tracks["track_id"].isin((a, b, c))
            tracks.loc[ca, "parent_track_id"], tracks.loc[cb, "parent_track_id"] = to_a, a
        ra = (tracks["track_id"] == a) & (tracks["frame"] >= t)
        rb = (tracks["track_id"] == b) & (tracks["frame"] >= t)
        tracks.loc[ra, "track_id"], tracks.loc[rb, "track_id"] = to_a, a
        if c_later:
            tracks.loc[rc, "track_id"] = b
        if linked:
            for tid in (a, b, c):
                tracks.loc[tracks["track_id"] == tid, "parent_track_id"] = own.get(tid, 0)
        if c:
            log.info("track %d (host) had gone over to its inner cell at frame %d (enclosed "
                     "from frame %d): the inner cell continues track %d, the host ring (track "
                     "%d) takes id %d back", a, t, t0, c, b, a)
        else:
            log.info("tracks %d and %d exchanged identities at frame %d (cell-in-cell); "
                     "repaired", a, b, t)
    tracks = relink(tracks.sort_values(["track_id", "frame"], kind="stable")
                    .reset_index(drop=True))
    return labels, tracks


def _pair_crop(labels: np.ndarray, ids: tuple[int, int], lo: int, hi: int
               ) -> np.ndarray | None:
    """All frames of ``labels`` cut to the box of ``ids``' masks in frames ``lo:hi``.

    A view (not a copy); None when neither track has a mask there.
    """
    near = np.isin(labels[lo:hi], ids)
    if not near.any():
        return None
    ys = np.flatnonzero(near.any(axis=(0, 2)))
    xs = np.flatnonzero(near.any(axis=(0, 1)))
    return labels[:, ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1]


def repair_enclosure_swaps(labels: np.ndarray, tracks: pd.DataFrame, pairs: pd.DataFrame,
                           search_frames: int, margin: float = 0.1
                           ) -> tuple[np.ndarray, pd.DataFrame, int]:
    """Undo tracker identity swaps between an inner cell and its host.

    When a target is internalised, its centroid moves onto its host's, so a
    centroid tracker can exchange the two identities. For each enclosure pair
    the frames within ``search_frames`` of its onset are checked (against
    each track's last mask up to 2 frames before; a track that has none, as
    when the tracker gave the host ring a new id, is judged by the other
    track alone): if exchanging the two ids
    from frame *t* on raises the summed mask IoU of each track between then
    and *t* by more than ``margin`` and makes the tracks' areas change less
    (by ``SWAP_SIZE_MARGIN`` in summed |log area ratio|),
    the ids are exchanged from *t* on (in a
    copy of the labels and the table). Masks are compared with their holes
    filled: a host becomes a ring around its inner cell, and its filled
    outline, not the ring, is what continues its earlier mask. A ring that
    Cellpose left open by a pixel has no hole to fill: from the enclosure's
    onset on, when the filled outlines do not call for an exchange, the
    host's outline is read once more as its ring filled together with the
    inner cell (at *t*, and before *t* in frames from the onset on).
    When neither reading calls for an exchange and the host ring has no past
    (a new id, from the frame before the onset on), the host's id may have
    gone over to the inner cell while the inner cell's own track ended: that
    track then continues with the inner cell and the ring takes the host's
    id back (:func:`_inner_before`). When the host's id comes back on the
    inner cell after a one-frame gap (both had new ids in that frame) and
    the ring's id is that young, or when the masks only lean to that
    reading (the inner cell overlaps the host's earlier outline about as
    much as the ring does), the cells' brightness decides the same way
    (:func:`_inner_by_brightness`; ``tracks`` with ``intensity_mean_target``;
    after a gap the inner cell's track may come back later as a piece of
    the ring: those masks go to the ring's new id).
    When the exchange would give the inner cell the id of a host track that
    came to the host across a gap (absent in the frame before, seen before
    that), that track's past is another cell's: the inner cell takes a new
    id from *t* instead (engulfment stitching may join it to its earlier
    pieces, :func:`stitch_engulfments`).
    Each cell keeps its own parent; a track the tracker started by division
    from one of the two follows the masks it came from, now under the other
    id, and the lineage columns are made consistent
    (:func:`livescreen.track.relink`).

    Parameters
    ----------
    labels : (T, Y, X) int array
        Target track-id labels. Not modified.
    tracks : pandas.DataFrame
        Target tracks table. Not modified.
    pairs : pandas.DataFrame
        ``inner_track_id, host_track_id, internalization_frame``
        (:func:`livescreen.events.score.enclosure_onset`).
    search_frames : int
    margin : float, optional

    Returns
    -------
    labels, tracks, n_swaps
        Repaired copies (the inputs themselves when nothing was swapped).
    """
    swaps = []
    fresh = int(max(labels.max(initial=0), tracks["track_id"].max() if len(tracks) else 0))
    n_t = labels.shape[0]
    last = tracks.groupby("track_id")["frame"].max()
    first = tracks.groupby("track_id")["frame"].min()
    bright = None
    if "intensity_mean_target" in tracks and len(tracks):
        bright = pd.Series(tracks["intensity_mean_target"].to_numpy(float),
                           index=pd.MultiIndex.from_arrays([tracks["track_id"].astype(int),
                                                            tracks["frame"].astype(int)]))
        bright = bright[~bright.index.duplicated()]

    def _says_swap(la, lb, pa, pb) -> bool:
        # a track that starts at t (the tracker gave the host ring, or the
        # inner cell, a new id) has no past: compare the other one's only
        keep = (0.0 if pa is None else _iou(la, pa)) + (0.0 if pb is None else _iou(lb, pb))
        swap = (0.0 if pa is None else _iou(lb, pa)) + (0.0 if pb is None else _iou(la, pb))
        # sizes must agree too: after a real swap the host's id sits on the
        # much smaller inner cell; an inner cell that moved fast into its
        # host can otherwise overlap the host's earlier outline more than its own
        keep_size = _size_change(la, pa) + _size_change(lb, pb)
        swap_size = _size_change(lb, pa) + _size_change(la, pb)
        return swap > keep + margin and swap_size < keep_size - SWAP_SIZE_MARGIN

    for p in pairs.itertuples(index=False):
        a, b, t0 = int(p.inner_track_id), int(p.host_track_id), int(p.internalization_frame)
        if b == 0:      # host ring not segmented: no host identity to exchange
            continue
        lo, hi = max(1, t0 - search_frames), min(n_t, t0 + search_frames + 1)
        # every mask compared lies in the pair's bounding box over these frames
        crop = _pair_crop(labels, (a, b), max(0, lo - 2), hi)
        if crop is None:
            continue
        for t in range(lo, hi):
            ra, rb = crop[t] == a, crop[t] == b
            pa, pb = _last_mask(crop, a, t), _last_mask(crop, b, t)
            if not (ra.any() and rb.any()) or (pa is None and pb is None):
                continue
            la, lb = _filled(ra), _filled(rb)
            said = _says_swap(la, lb, pa, pb)
            if not said and t >= t0:
                # an open ring (one pixel short of closing) fills to nothing:
                # from the onset on, read the host's outline as its ring closed
                # over the inner cell, too
                said = _says_swap(la, _filled(ra | rb), pa,
                                  _last_mask(crop, b, t, closed_by=a, from_frame=t0))
            c = 0
            if not said and pb is None and pa is not None and t >= t0 - 1:
                # the crescent frame just before the ring closes, or the onset
                c, decided = _inner_before(crop, la, lb, pa, t, last, (a, b), margin)
                if c and not decided:   # the masks lean to the exchange: brightness decides
                    c = (_inner_by_brightness(crop, la, t, last, (a, b), bright)
                         if bright is not None else 0)
                said = c > 0
            if (not said and bright is not None and pa is not None and t >= t0 - 1
                    and not (crop[t - 1] == a).any() and first.get(b, t) >= t - 1):
                # the host's id came back after a one-frame gap on the inner cell
                c = _inner_by_brightness(crop, la, t, last, (a, b), bright, gone=True)
                said = c > 0
            if said:
                if not c and first.get(b, t) < t - 1 and not (crop[t - 1] == b).any():
                    # the host's track came there across a gap: its past is
                    # another cell's, so the inner cell starts a track of its own
                    # (engulfment stitching may join it to its earlier pieces)
                    fresh += 1
                    c = fresh
                    log.info("track %d (host at frame %d) came there across a gap: the inner "
                             "cell takes a new track %d from frame %d", b, t, c, t)
                swaps.append((a, b, t, c, t0))
                break
    if not swaps:
        return labels, tracks, 0
    labels, tracks = _apply_swaps(labels, tracks, swaps)
    return labels, tracks, len(swaps)


#: The exchange reading (:func:`repair_attacked_swaps`) must be at least this
#: many times the kept one. Of 30 exchanges the first version made on the demo
#: and held-out plates P4, P5, P9 (own masks and true labels), checked against
#: the truth, 13 were right and 17 wrong; 16 of the wrong ones read at most 1.4
#: times the kept reading (P5 C02 true labels 0.39 / 0.34), 7 right ones 1.8-8
#: times. Where the inner cell already lies in the host's filled outline both
#: readings are high and say little (P9 B03 own 0.45 / 0.84 right, P5 B02 true
#: labels 0.69 / 0.89 wrong); the attacked track's own reading decides there
#: (:func:`_attacked_jump`).
ATTACK_SWAP_RATIO = 2.0


def _mask_from(crop: np.ndarray, tid: int, t: int, span: int = 2) -> np.ndarray | None:
    """Filled mask of ``tid`` in its first frame from ``t`` to ``t + span`` (None if absent)."""
    for k in range(t, min(crop.shape[0], t + span + 1)):
        m = crop[k] == tid
        if m.any():
            return _filled(m)
    return None


#: The attacked cell's track has left its cell (:func:`_attacked_jump`) when
#: its mask overlaps its own last one by less than this IoU.
ATTACK_JUMP_MAX_IOU = 0.2

#: ... or when the inner track's mask overlaps that last mask by more than the
#: attacked track's own mask does, by this IoU (a ring that still covers part of
#: the place the attacked cell had: P4 C04 34, own masks, 0.40 against 0.24)
ATTACK_JUMP_MARGIN = 0.1


def _attacked_jump(crop: np.ndarray, a: int, b: int, frames: range, min_iou: float
                   ) -> tuple[int, tuple[float, float]]:
    """First frame where attacked track ``b`` left its cell and inner track ``a`` took it.

    While an attacked cell moves into its host, the inner cell lies in the
    host's old outline, so the host's id on it reads as continuing (IoU with
    the host's last filled mask 0.55-0.82 in the cases seen) and the summed
    readings of :func:`repair_attacked_swaps` say little. The attacked
    track's own reading does not: in the frame it jumped onto a piece of the
    host ring (or vanished), its mask overlaps its last one by less than
    :data:`ATTACK_JUMP_MAX_IOU` (or by :data:`ATTACK_JUMP_MARGIN` less than
    the inner track's does: a ring piece that still covers part of the
    cell's place), while the inner track's mask overlaps that
    last mask of the attacked cell by at least ``min_iou``.

    Returns
    -------
    frame, (inner's IoU with the attacked cell's last mask, attacked track's own)
        Frame 0 when there is none.
    """
    if not np.any(crop[:frames.start] == a):
        return 0, (0.0, 0.0)        # a new track, not the host's id: nothing exchanged
    for t in frames:
        la, lb, pb = _mask_from(crop, a, t), _mask_from(crop, b, t), _last_mask(crop, b, t)
        if la is None or pb is None:
            continue
        own = 0.0 if lb is None else _iou(lb, pb)
        took = _iou(la, pb)
        if (own < ATTACK_JUMP_MAX_IOU or took > own + ATTACK_JUMP_MARGIN) and took >= min_iou:
            return t, (took, own)
    return 0, (0.0, 0.0)


def _in_window(frames: np.ndarray | None, t0: int, window: int) -> np.ndarray:
    """Contact ``frames`` (sorted; None: none) from ``t0 - window`` to ``t0``."""
    if frames is None:
        return np.empty(0, np.int64)
    return frames[(frames >= t0 - window) & (frames <= t0)]


def _attack_span(labels: np.ndarray, a: int, b: int, fb: np.ndarray, t0: int
                 ) -> tuple[np.ndarray | None, range]:
    """Crop of tracks ``a`` and ``b`` around an attack, and the frames to read in it.

    From 2 frames before ``b``'s first contact frame in the window (``fb``)
    to 3 after the onset ``t0``; the frames read run from the one after that
    first contact to the onset.
    """
    crop = _pair_crop(labels, (a, b), max(0, int(fb[0]) - 2), t0 + 3)
    return crop, range(max(1, int(fb[0]) + 1), t0 + 1)


def _jumped_from(labels: np.ndarray, a: int, t0: int, hit: Mapping[int, np.ndarray],
                 window: int, min_iou: float, done: set[int]) -> int:
    """Attacked track that left its cell to inner track ``a`` (host unknown), or 0.

    Of the tracks in contact within ``window`` frames before the onset
    ``t0`` (``hit``: track id -> contact frames), the one whose cell ``a``
    took (:func:`_attacked_jump`, the highest overlap when several did).
    """
    best, found = 0.0, 0
    for b, fb in hit.items():
        fb = _in_window(fb, t0, window)
        if b == a or b in done or not fb.size:
            continue
        crop, frames = _attack_span(labels, a, b, fb, t0)
        if crop is None:
            continue
        t, (took, _own) = _attacked_jump(crop, a, b, frames, min_iou)
        if t and took > best:
            best, found = took, b
    return found


def repair_attacked_swaps(labels: np.ndarray, tracks: pd.DataFrame, pairs: pd.DataFrame,
                          contacts: pd.DataFrame, window: int, min_iou: float
                          ) -> tuple[np.ndarray, pd.DataFrame, int]:
    """Give an attacked cell's id back to it when the tracker moved it onto the host.

    The effector's target is the cell that ends up inside (the attack
    triggers the engulfment). When an enclosure pair's host carries an
    effector contact within ``window`` frames before the onset and its inner
    cell carries none, while the two tracks' masks allow the exchange, the
    tracker most likely gave the attacked cell's id to its host as the cell
    moved into it: the inner cell jumps onto the host's place, so each
    cell's mask overlaps the other's earlier one, and often one of the two
    is missing for a frame or starts anew there (where
    :func:`repair_enclosure_swaps` compares nothing). The exchange reading
    of a frame is the summed IoU of each track's mask from that frame on
    (its first within 2 frames) with the other track's last mask up to 2
    frames before (filled masks), the kept reading the same with its own.
    Of the frames from the host's first contact in the window to the onset,
    those whose exchange reading reaches ``min_iou`` and
    ``ATTACK_SWAP_RATIO`` times the kept one qualify, and the ids are
    exchanged from the one where it gains most over the kept reading (a
    contacted host that stays itself continues its own place: its kept
    reading is the higher). Where no frame qualifies, the attacked track's
    own reading is asked (:func:`_attacked_jump`): the ids are exchanged
    from the frame it left its cell for a piece of the ring while the inner
    track took that cell. For an enclosure whose host is not segmented
    (host 0) or was not in contact in the window (a piece of the ring) the
    attacked track is looked for that way among the tracks in contact in the
    window (:func:`_jumped_from`).

    Parameters
    ----------
    labels : (T, Y, X) int array
        Target track-id labels. Not modified.
    tracks : pandas.DataFrame
        Target tracks table. Not modified.
    pairs : pandas.DataFrame
        ``inner_track_id, host_track_id, internalization_frame``.
    contacts : pandas.DataFrame
        ``frame, target_track_id`` of effector contacts (:func:`measure_site`).
    window : int
        Frames before the onset in which the host's contact counts
        (``cell_in_cell.window_min``).
    min_iou : float
        Least summed IoU of the exchange reading.

    Returns
    -------
    labels, tracks, n_swaps
        Repaired copies (the inputs themselves when nothing was exchanged).
    """
    if pairs.empty or contacts.empty:
        return labels, tracks, 0
    hit = {int(k): np.sort(g.to_numpy()) for k, g in
           contacts.groupby("target_track_id")["frame"]}
    swaps, done = [], set()
    for p in pairs.itertuples(index=False):
        a, b, t0 = int(p.inner_track_id), int(p.host_track_id), int(p.internalization_frame)
        fb = _in_window(hit.get(b), t0, window)
        if a not in done and not fb.size:       # host unknown or never touched
            b = _jumped_from(labels, a, t0, hit, window, min_iou, done | {b})
            fb = _in_window(hit.get(b), t0, window)
        if b == 0 or a in done or b in done:
            continue
        if not fb.size or _in_window(hit.get(a), t0, 2 * window).size:
            continue
        crop, frames = _attack_span(labels, a, b, fb, t0)
        if crop is None:
            continue
        best, best_t = 0.0, 0
        for t in frames:
            la, lb = _mask_from(crop, a, t), _mask_from(crop, b, t)
            pa, pb = _last_mask(crop, a, t), _last_mask(crop, b, t)
            if pb is None or lb is None and la is None:
                continue
            swap = sum(_iou(x, y) for x, y in ((lb, pa), (la, pb)) if x is not None
                       and y is not None)
            keep = sum(_iou(x, y) for x, y in ((la, pa), (lb, pb)) if x is not None
                       and y is not None)
            if swap >= min_iou and swap >= ATTACK_SWAP_RATIO * keep and swap - keep > best:
                best, best_t, reading = swap - keep, t, (swap, keep)
        how = "summed IoU exchanged %.2f, kept %.2f"
        if not best_t:
            best_t, reading = _attacked_jump(crop, a, b, frames, min_iou)
            how = "the inner track on its last mask IoU %.2f, itself %.2f"
        if best_t:
            swaps.append((a, b, best_t, 0, t0))
            done |= {a, b}
            log.info("track %d (attacked at frame %d) went on as the host of track %d from "
                     "frame %d (%s): ids exchanged back (cell-in-cell from frame %d)",
                     b, int(fb[0]), a, best_t, how % reading, t0)
    if not swaps:
        return labels, tracks, 0
    labels, tracks = _apply_swaps(labels, tracks, swaps)
    return labels, tracks, len(swaps)


def _continues(labels: np.ndarray, prev: int, prev_frame: int, frame: int) -> int:
    """Track at ``frame`` overlapping ``prev``'s mask at ``prev_frame`` with IoU >= 0.5 (or 0)."""
    a = labels[prev_frame] == prev
    if not a.any():
        return 0
    ids, inter = np.unique(labels[frame][a], return_counts=True)
    for i, n in zip(ids, inter, strict=True):
        if i and n / (a.sum() + np.count_nonzero(labels[frame] == i) - n) >= 0.5:
            return int(i)
    return 0


def _chain_back(labels: np.ndarray, tracks: pd.DataFrame, inner: int, span: pd.DataFrame,
                window: int, travel_px: float, max_gap: int,
                brightness_change: float | None = None) -> list[int]:
    """Tracks that the inner cell ``inner`` came through, latest first (itself excluded).

    A predecessor ended at most ``max_gap`` frames before the current piece
    started, within ``travel_px`` of its first position, and its mask does
    not continue, by overlap, into another track (then that track is the
    cell, not this piece). With ``brightness_change`` (and ``span`` columns
    ``b_first`` / ``b_last``, the mean intensities of a track's first and
    last objects), its last brightness is within that absolute log ratio of
    the piece's first: a piece keeps its cell's brightness. Of several, the
    parent the tracker gave the piece is taken if it qualifies, else the one
    that ended last (fewest frames missing), then the nearest: an inner cell
    crossing into its host leaves its track one frame and is found the next,
    while a neighbour lost a frame earlier may lie closer.
    """
    chain, cur = [], int(inner)
    while len(chain) <= window:
        first = int(span.at[cur, "first"])
        if first == 0:
            return chain
        row = tracks[(tracks["track_id"] == cur) & (tracks["frame"] == first)].iloc[0]
        ended = span[(span["last"] < first) & (span["last"] >= first - 1 - max_gap)
                     & ~span.index.isin([cur, *chain])]
        if ended.empty:
            return chain
        d = pd.Series(np.hypot(ended["y_last"] - row["y_px"], ended["x_last"] - row["x_px"]),
                      index=ended.index)
        d = d[d <= travel_px]
        if brightness_change is not None and "b_first" in span:
            step = np.abs(np.log(span.loc[d.index, "b_last"] / span.at[cur, "b_first"]))
            d = d[~(step > brightness_change)]     # unknown (NaN) brightness: not checked
        par = int(span.at[cur, "parent"])
        # the parent, else the piece that ended last (fewest frames missing),
        # nearest first; a track whose mask continues into another is not a piece
        gap = first - ended.loc[d.index, "last"]
        order = [int(i) for _g, _d, i in sorted(zip(gap, d, d.index, strict=True))]
        if par in order:
            order = [par]
        prev = next((i for i in order
                     if _continues(labels, i, int(span.at[i, "last"]), first) in (0, cur)), 0)
        if prev == 0:
            return chain
        chain.append(prev)
        cur = prev
    return chain


#: A track that comes back after a gap on an object smaller than this share of
#: its last mask before the gap has lost its cell (:func:`_piece_returns`).
PIECE_RETURN_MAX_AREA = 0.5


def _piece_returns(tracks: pd.DataFrame, inners: Mapping[int, int], max_gap: int,
                   contacts: pd.DataFrame, window: int) -> dict[int, int]:
    """Attacked cells' tracks that lost their cell as an inner cell was born: where to cut.

    The attacked cell's track can leave the cell as it moves into its host
    (the cell takes a new id there) and come back, after a gap, on a piece
    of the host ring. For each inner track of ``inners`` (track id -> first
    frame), another track in contact with an effector (``contacts``' target
    ids and frames) in the ``window`` frames before that first frame, seen
    at most ``max_gap`` + 1 frames before it, absent from then on for at
    most ``max_gap`` frames (at least in the inner track's first frame), and
    back on an object smaller than :data:`PIECE_RETURN_MAX_AREA` of its last
    one before the gap. (The host's own track, back on its ring, was not
    attacked then.)

    Returns
    -------
    dict
        Track id -> frame from which its rows are another object's.
    """
    g = tracks.sort_values("frame").groupby("track_id")
    frames = {int(t): grp["frame"].to_numpy() for t, grp in g}
    areas = {int(t): grp["area_px"].to_numpy(float) for t, grp in g}
    cut: dict[int, int] = {}
    touched = contacts.groupby("target_track_id")["frame"].unique() if len(contacts) else {}
    for inner, first in inners.items():
        for c, fr in frames.items():
            if c == inner or c in cut or c not in touched:
                continue
            if not _in_window(touched[c], first - 1, window - 1).size:
                continue
            i = int(np.searchsorted(fr, first))      # first of c's frames >= first
            if i == 0 or i == len(fr) or fr[i] == first:
                continue
            e, k = int(fr[i - 1]), int(fr[i])
            if e < first - 1 - max_gap or k - e - 1 > max_gap:
                continue
            if areas[c][i] < PIECE_RETURN_MAX_AREA * areas[c][i - 1]:
                cut[c] = k
    return cut


def _resumed_as_another(tracks: pd.DataFrame, pairs: pd.DataFrame, window: int,
                        brightness_change: float, contacts: pd.DataFrame | None = None
                        ) -> dict[int, int]:
    """Inner tracks that came back after a gap on another cell: where to cut.

    The tracker can bridge a gap in one cell's track with another cell: a
    neighbour lost for a few frames is linked to an inner cell whose own
    track ended as it moved into its host. For each enclosure of ``pairs``,
    the inner track's last gap (frames missing) ending at most ``window``
    frames before the onset is a cut when the track's mean target-channel
    intensity (``intensity_mean_target``) across it changes by more than
    ``brightness_change`` (absolute log ratio of the first object after the
    gap to the last before): a cell keeps its brightness. With
    ``contacts``, a track in contact with an effector in the ``window``
    frames before the gap's end is left whole: an attacked cell going into
    its host reads another brightness while it is half under the ring.

    Returns
    -------
    dict
        Track id -> frame from which its rows are another cell's.
    """
    g = tracks.sort_values("frame").groupby("track_id")
    touched = (contacts.groupby("target_track_id")["frame"].unique()
               if contacts is not None and len(contacts) else {})
    cut: dict[int, int] = {}
    for p in pairs.itertuples(index=False):
        inner, t0 = int(p.inner_track_id), int(p.internalization_frame)
        if inner in cut or inner not in g.groups:
            continue
        rows = g.get_group(inner)
        fr = rows["frame"].to_numpy()
        b = rows["intensity_mean_target"].to_numpy(float)
        after = np.flatnonzero((np.diff(fr) > 1) & (fr[1:] <= t0) & (fr[1:] >= t0 - window)) + 1
        if after.size == 0:
            continue
        i = int(after[-1])
        k = int(fr[i])
        if _in_window(touched.get(inner), k - 1, window - 1).size:
            continue
        if abs(np.log(b[i] / b[i - 1])) > brightness_change:   # NaN: not cut
            cut[inner] = k
    return cut


def _cut_tracks(labels: np.ndarray, tracks: pd.DataFrame, cut: Mapping[int, tuple[int, int]]
                ) -> tuple[np.ndarray, pd.DataFrame]:
    """Copies where each track of ``cut`` (id -> (frame, new id)) takes the new id from then."""
    labels, tracks = labels.copy(), tracks.copy()
    for c, (k, f) in cut.items():
        seg = labels[k:]
        seg[seg == c] = f
        rows = (tracks["track_id"] == c) & (tracks["frame"] >= k)
        tracks.loc[rows, "track_id"] = f
        tracks.loc[rows, "parent_track_id"] = 0
    return labels, tracks


def stitch_engulfments(labels: np.ndarray, tracks: pd.DataFrame, pairs: pd.DataFrame,
                       window: int, travel_px: float, max_gap: int = 1,
                       brightness_change: float | None = None,
                       contacts: pd.DataFrame | None = None
                       ) -> tuple[np.ndarray, pd.DataFrame, int]:
    """Join the track pieces of a cell that moved into its host.

    During engulfment an inner cell can travel a cell diameter or more per
    frame into its host, faster than the target motion model allows: its
    track ends and one or more new tracks start (the tracker's division step
    may even call the break a division). Walking back from each enclosed
    (inner) track, a predecessor is a track that ended at most ``max_gap``
    frames before it started, within ``travel_px`` of its first position,
    whose last mask does not continue into another track by overlap (IoU >=
    0.5) and, with ``brightness_change``, whose last mean target-channel
    intensity (``tracks``' ``intensity_mean_target``) is within that
    absolute log ratio of the piece's first (a cell keeps its brightness;
    the host ring's new track, next to the inner cell's old one, does not
    have the inner cell's); of several, its parent if that qualifies, else the one that ended
    last, then the nearest (:func:`_chain_back`). If the chain reaches back to a track
    that ended no more than ``window`` frames before the enclosure began, the
    pieces are given the first piece's id (the rest of the chain's siblings
    lose their parent: there was no division; roots and generations are
    recomputed by :func:`livescreen.track.relink`).
    With ``contacts``, a track attacked just before an inner track began
    that comes back after a gap on a small piece (:func:`_piece_returns`)
    is tried as a predecessor ending before the gap; with
    ``brightness_change``, an inner track that came back after a gap, within
    ``window`` frames before its enclosure, with another brightness and
    (with ``contacts``) not attacked just before the gap
    (:func:`_resumed_as_another`) is tried as a new piece from the gap on
    (the enclosure is the piece's). A cut (the later masks under a new id)
    is kept only when it joins an inner cell's chain.

    Parameters
    ----------
    labels : (T, Y, X) int array
        Target track-id labels. Not modified.
    tracks : pandas.DataFrame
        Target tracks table. Not modified.
    pairs : pandas.DataFrame
        ``inner_track_id, host_track_id, internalization_frame``.
    window : int
        Frames from the first piece's end to the enclosure onset.
    travel_px : float
        Largest jump between pieces without a parent link.
    max_gap : int, optional
        Frames missing between pieces.
    brightness_change : float, optional
        Largest brightness change between pieces; None: not checked.
    contacts : pandas.DataFrame, optional
        Effector contacts (:func:`frame_contacts` rows: ``frame``,
        ``target_track_id``); None: no track is cut.

    Returns
    -------
    labels, tracks, n_stitched
        Repaired copies (the inputs themselves when nothing changed).
    """
    if pairs.empty or tracks.empty:
        return labels, tracks, 0
    given = labels, tracks
    resumed = (_resumed_as_another(tracks, pairs, window, brightness_change, contacts)
               if brightness_change is not None and "intensity_mean_target" in tracks else {})
    fresh = int(max(labels.max(initial=0), tracks["track_id"].max()))
    cut = {c: (k, fresh + i) for i, (c, k) in enumerate(sorted(resumed.items()), start=1)}
    pairs = pairs.copy()        # an enclosure after the cut is the new piece's
    for c, (k, f) in cut.items():
        later = (pairs["inner_track_id"] == c) & (pairs["internalization_frame"] >= k)
        pairs.loc[later, "inner_track_id"] = f
    firsts = tracks.groupby("track_id")["frame"].min()
    firsts = pd.concat([firsts, pd.Series({f: k for k, f in cut.values()}, dtype=int)])
    inners = {int(i): int(firsts[i]) for i in pairs["inner_track_id"].astype(int)
              if i in firsts.index and firsts[i] > 0}
    returns = (_piece_returns(tracks, inners, max_gap, contacts, window)
               if contacts is not None and "area_px" in tracks else {})
    fresh += len(cut)
    cut |= {c: (k, fresh + i) for i, (c, k) in enumerate(sorted(returns.items()), start=1)
            if c not in cut}
    if cut:     # tried on copies; kept only where the cut track joins an inner cell
        labels, tracks = tried = _cut_tracks(labels, tracks, cut)
    tr = tracks.sort_values(["track_id", "frame"])
    g = tr.groupby("track_id")
    span = pd.DataFrame({"first": g["frame"].min(), "last": g["frame"].max(),
                         "parent": g["parent_track_id"].first(),
                         "y_last": g["y_px"].last(), "x_last": g["x_px"].last()})
    if brightness_change is not None and "intensity_mean_target" in tr:
        span["b_first"] = g["intensity_mean_target"].first()
        span["b_last"] = g["intensity_mean_target"].last()
    rename: dict[int, int] = {}
    used: set[int] = set()
    for p in pairs.itertuples(index=False):
        inner, t0 = int(p.inner_track_id), int(p.internalization_frame)
        if inner not in span.index or inner in used:
            continue
        chain = _chain_back(labels, tr, inner, span, window, travel_px, max_gap,
                            brightness_change)
        if not chain or t0 - int(span.at[chain[-1], "last"]) > window:
            continue
        if int(p.host_track_id) in chain or used.intersection(chain):
            continue
        root = chain[-1]
        used.update([inner, *chain])
        for tid in [inner, *chain[:-1]]:
            rename[tid] = root
    if not rename:
        return (*given, 0)
    joined = set(rename) | set(rename.values())
    kept = {c: kf for c, kf in cut.items() if c in joined or kf[1] in joined}
    labels, tracks = (given if not kept else tried if kept == cut
                      else _cut_tracks(*given, kept))
    for c, (k, f) in sorted(kept.items()):
        if c in resumed:
            log.info("track %d came back at frame %d with another cell's brightness (now "
                     "track %d): the inner cell, not the cell before the gap", c, k, f)
        else:
            log.info("track %d came back at frame %d on a piece (now track %d) after a gap "
                     "in which an inner cell's track began: the piece is another object",
                     c, k, f)
    lut_ids = np.array(sorted(rename), dtype=np.int64)
    labels = labels.copy()
    for old in lut_ids:
        labels[labels == old] = rename[int(old)]
    tracks = tracks.copy()
    pieces = set(rename) | set(rename.values())
    tracks["track_id"] = tracks["track_id"].map(lambda t: rename.get(int(t), int(t)))
    # siblings of the pieces (the tracker's "other daughter") had no division
    sib = tracks["parent_track_id"].isin(list(pieces)) & ~tracks["track_id"].isin(list(pieces))
    tracks.loc[sib, "parent_track_id"] = 0
    tracks.loc[tracks["track_id"].isin(list(rename.values())), "parent_track_id"] = (
        tracks.loc[tracks["track_id"].isin(list(rename.values()))].groupby("track_id")[
            "parent_track_id"].transform("first"))
    tracks = relink(tracks.sort_values(["track_id", "frame"], kind="stable")
                    .reset_index(drop=True))
    for root in sorted(set(rename.values())):
        log.info("engulfment: tracks %s joined into track %d (the inner cell moved into its "
                 "host)", sorted(k for k, v in rename.items() if v == root), root)
    return labels, tracks, len(rename)
