"""Tracking stage: link segmented objects over time with btrack.

Pipeline for one site and population (:func:`track_site`):

1. :func:`livescreen.features.object_features` measures every object once
   (regionprops per frame, all channels);
2. :func:`link_objects` links the object centroids with btrack using the
   project's models (:mod:`livescreen.track_models`), converted from physical
   units with the pixel size and frame interval;
3. :func:`tracks_table` assembles the tracks table (:class:`TracksTable`):
   one row per object per frame, physical units, parent / root / generation.

Tracks load into napari with :func:`to_napari` (see docs/tracking.md);
:func:`relabel_by_track` paints a label stack whose values are track ids.

Behaviour on awkward input (documented, tested): no objects at all -> an
empty, schema-valid table; empty frames -> tracks bridge them when the gap is
at most ``max_gap_min`` and otherwise end; a single frame, a single object, or
frames farther apart than btrack can link -> every object is its own track;
jumps farther than the search radius -> the track ends and a new one starts;
a movie whose Y/X size differs from the labels -> NaN intensities and a
warning; a movie with fewer frames -> NaN intensities for the missing frames.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from os import PathLike
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from livescreen.features import channel_names, label_overlaps, object_features
from livescreen.track_models import TrackingParams, btrack_config, max_lost_frames

log = logging.getLogger(__name__)

BUILD_HINT = "python tools/build_btrack.py"


class BtrackUnavailable(RuntimeError):
    """btrack or its compiled core (libtracker) cannot be loaded."""


class TracksTable(pa.DataFrameModel):
    """``track/{population}_tracks.parquet``: one row per object per frame.

    Positions are centroids; ``label_id`` is the object's value in the
    segmentation label stack of that frame, so ``(frame, label_id)`` maps a
    row back to its mask. ``parent_track_id`` is 0 for tracks that do not
    start by division. ``intensity_mean_<channel>`` columns (one per movie
    channel, named by role: target, effector, death, or ``c<i>``) hold the
    mean raw intensity inside the mask.
    """

    plate: Series[str]
    well: Series[str]
    field: Series[str]
    population: Series[str] = pa.Field(isin=["target", "effector"])
    track_id: Series[int] = pa.Field(gt=0)
    frame: Series[int] = pa.Field(ge=0)
    time_min: Series[float] = pa.Field(ge=0)
    label_id: Series[int] = pa.Field(gt=0)
    y_px: Series[float]
    x_px: Series[float]
    y_um: Series[float]
    x_um: Series[float]
    area_px: Series[int] = pa.Field(gt=0)
    area_um2: Series[float] = pa.Field(gt=0)
    perimeter_um: Series[float] = pa.Field(ge=0)
    major_axis_um: Series[float] = pa.Field(ge=0)
    minor_axis_um: Series[float] = pa.Field(ge=0)
    eccentricity: Series[float] = pa.Field(ge=0, le=1)
    solidity: Series[float] = pa.Field(ge=0, le=1)
    touches_border: Series[bool]
    intensity_mean: Series[float] = pa.Field(alias=r"^intensity_mean_\w+$", regex=True,
                                             nullable=True, required=False)
    parent_track_id: Series[int] = pa.Field(ge=0)
    root_track_id: Series[int] = pa.Field(gt=0)
    generation: Series[int] = pa.Field(ge=0)

    class Config:
        strict = False
        coerce = True

    @pa.dataframe_check
    def one_row_per_track_and_frame(cls, df: pd.DataFrame) -> bool:
        """A track has at most one object per frame."""
        return not df.duplicated(["track_id", "frame"]).any()

    @pa.dataframe_check
    def one_row_per_object(cls, df: pd.DataFrame) -> bool:
        """Each segmented object appears once."""
        return not df.duplicated(["frame", "label_id"]).any()

    @pa.dataframe_check
    def parents_exist(cls, df: pd.DataFrame) -> bool:
        """Every parent is a track of the table that ends before its child starts."""
        par = df.loc[df["parent_track_id"] > 0, ["track_id", "parent_track_id", "frame"]]
        if par.empty:
            return True
        end = df.groupby("track_id")["frame"].max()
        start = par.groupby("track_id").agg(parent=("parent_track_id", "first"),
                                            start=("frame", "min"))
        if not start["parent"].isin(end.index).all():
            return False
        return bool((end.loc[start["parent"]].to_numpy() < start["start"].to_numpy()).all())


LINK_COLUMNS = ("track_id", "parent_track_id", "root_track_id", "generation")


# --------------------------------------------------------------------------- btrack


def _quiet_btrack(level: int) -> None:
    """Route btrack's logger (DEBUG + own console handler at import) through ours."""
    blog = logging.getLogger("btrack")
    for handler in list(blog.handlers):
        blog.removeHandler(handler)
    blog.setLevel(level)
    blog.propagate = True


def new_tracker(btrack_log_level: int = logging.WARNING):
    """A ``btrack.BayesianTracker`` (quiet), or a clear error if btrack cannot load.

    Parameters
    ----------
    btrack_log_level : int, optional
        Level for btrack's own logger (WARNING by default: btrack logs every
        step at INFO/DEBUG).

    Returns
    -------
    btrack.BayesianTracker
        Use as a context manager so that the C++ engine is freed.

    Raises
    ------
    BtrackUnavailable
        If btrack is missing or its C++ library does not load (e.g. the wheel's
        ``libtracker.so`` needs a newer libstdc++ than this system has).
    """
    try:
        import btrack
    except ImportError as err:
        raise BtrackUnavailable(f"btrack is not installed ({err}); run tools/setup.sh") from err
    _quiet_btrack(btrack_log_level)
    try:
        tracker = btrack.BayesianTracker(verbose=False)
    except Exception as err:  # btrack wraps the dlopen OSError in a bare Exception
        cause = err.__cause__ or err
        raise BtrackUnavailable(
            f"btrack's C++ core (libtracker.so) cannot be loaded: {cause}. The bundled "
            f"library needs a newer C++ runtime than this system has; rebuild it with "
            f"`{BUILD_HINT}` (needs a C++ compiler), or use conda-forge's btrack."
        ) from err
    _quiet_btrack(btrack_log_level)
    return tracker


def _singletons(n: int, first_id: int = 1) -> pd.DataFrame:
    ids = np.arange(first_id, first_id + n, dtype=np.int64)
    return pd.DataFrame({"track_id": ids, "parent_track_id": np.zeros(n, np.int64),
                         "root_track_id": ids, "generation": np.zeros(n, np.int64)})


def _run_btrack(frame: np.ndarray, y: np.ndarray, x: np.ndarray, cfg, optimise: bool,
                btrack_log_level: int) -> list[tuple[int, int, list[int]]]:
    """Track points; return (track id, parent id, object indices) per btrack track."""
    from btrack.btypes import PyTrackObject

    objects = []
    for i in range(frame.size):
        obj = PyTrackObject()
        obj.ID, obj.t = i, int(frame[i])
        obj.x, obj.y, obj.z = float(x[i]), float(y[i]), 0.0
        objects.append(obj)
    with new_tracker(btrack_log_level) as tracker:
        tracker.configure(cfg)
        tracker.append(objects)
        tracker.track(step_size=100)
        if optimise:
            tracker.optimise()  # not optimize(): it drops the configured GLPK options
        out = []
        for trk in tracker.tracks:
            refs = [r for r in trk.refs if r >= 0]
            if refs:
                out.append((int(trk.ID), int(trk.parent or 0), refs))
    return out


def _lineage(track_ids: np.ndarray, parents: Mapping[int, int]) -> tuple[dict, dict]:
    """Root and generation of each track from a child -> parent map."""
    root, gen = {}, {}
    for tid in track_ids:
        chain, cur = [], int(tid)
        while cur not in root:
            chain.append(cur)
            par = parents.get(cur, 0)
            if par == 0 or par in chain:
                root[cur], gen[cur] = cur, 0
                chain.pop()
                break
            cur = par
        for node in reversed(chain):
            par = parents[node]
            root[node], gen[node] = root[par], gen[par] + 1
    return root, gen


def relink(tracks: pd.DataFrame) -> pd.DataFrame:
    """Lineage columns made consistent after track ids were edited.

    The scorer's identity repairs (exchanged or joined ids, objects left out)
    edit a tracks table row by row; this restores the lineage contract of
    :class:`TracksTable`. Each track takes the parent of its first row; a
    parent that is no longer in the table, or that does not end before its
    child starts, is cleared (0: the track no longer starts by division);
    ``root_track_id`` and ``generation`` are recomputed from the parents.

    Parameters
    ----------
    tracks : pandas.DataFrame
        Tracks table. Not modified. Without a ``parent_track_id`` column it is
        returned as is.

    Returns
    -------
    pandas.DataFrame
        A copy with consistent ``parent_track_id``, ``root_track_id`` and
        ``generation`` (the same rows in the same order).
    """
    if "parent_track_id" not in tracks or tracks.empty:
        return tracks
    out = tracks.copy()
    g = out.sort_values("frame", kind="stable").groupby("track_id")
    span = pd.DataFrame({"first": g["frame"].min(), "last": g["frame"].max(),
                         "parent": g["parent_track_id"].first().astype(np.int64)})
    par = span["parent"]
    valid = par.map(span["last"]) < span["first"]      # NaN (not in the table) -> False
    cleared = span.index[(par > 0) & ~valid]
    if len(cleared):
        log.info("track(s) %s: parent no longer ends before the track starts after the "
                 "identity repairs; parent cleared", [int(t) for t in cleared])
    parents = par.where(valid, 0).astype(np.int64)
    root, gen = _lineage(span.index.to_numpy(), {int(k): int(v) for k, v in parents.items()})
    ids = out["track_id"].astype(np.int64)
    out["parent_track_id"] = ids.map(parents).astype(np.int64)
    if "root_track_id" in out:
        out["root_track_id"] = ids.map(root).astype(np.int64)
    if "generation" in out:
        out["generation"] = ids.map(gen).astype(np.int64)
    return out


def split_divisions(features: pd.DataFrame, track_of: np.ndarray, parents: dict[int, int],
                    max_separation_px: float, tolerance_px: float) -> tuple[np.ndarray, dict]:
    """Turn "mother continues into one daughter" into a division.

    Frame-to-frame linking usually continues a dividing cell's track into one
    daughter and starts a new track for the other, which btrack's division
    hypothesis cannot repair. A track ``B`` that starts at frame ``t`` (after the
    first frame, without a parent) is taken as a sister of the object ``A(t)``
    of another track ``A`` when the two are at most ``max_separation_px``
    apart and their midpoint lies within ``0.5 * |A(t) - B(t)| + tolerance_px``
    of ``A(t - 1)`` (the mother sat between her daughters). ``A`` is then cut
    at ``t``: its rest becomes a new track and both it and ``B`` get ``A`` as
    parent. Each mother divides at most once per frame; the closest sister wins.

    Parameters
    ----------
    features : pandas.DataFrame
        ``frame``, ``y_px``, ``x_px`` per object.
    track_of : (N,) int array
        Track id per object (not modified).
    parents : dict
        Child track id -> parent track id (not modified).
    max_separation_px, tolerance_px : float
        Geometry thresholds in pixels.

    Returns
    -------
    track_of : (N,) int array
        Updated track ids.
    parents : dict
        Updated child -> parent map.
    """
    track_of = track_of.copy()
    parents = dict(parents)
    frame = features["frame"].to_numpy(np.int64)
    yx = features[["y_px", "x_px"]].to_numpy(float)
    df = pd.DataFrame({"track": track_of, "frame": frame, "i": np.arange(frame.size)})
    first = df.sort_values("frame", kind="stable").drop_duplicates("track")
    t0 = frame.min(initial=0)
    cand = first[(first["frame"] > t0) & (first["track"].map(lambda t: parents.get(t, 0)) == 0)]
    by_frame = {int(t): g["i"].to_numpy() for t, g in df.groupby("frame")}
    next_id = int(track_of.max(initial=0)) + 1
    for row in cand.sort_values("frame").itertuples():
        t, b_idx = int(row.frame), int(row.i)
        if t - 1 not in by_frame or t not in by_frame:
            continue
        b_track = int(track_of[b_idx])  # current id (earlier splits may renumber)
        if parents.get(b_track, 0):
            continue
        now = pd.Series(by_frame[t], index=track_of[by_frame[t]])
        prev = pd.Series(by_frame[t - 1], index=track_of[by_frame[t - 1]])
        shared = now.index.intersection(prev.index).difference([b_track])
        if shared.empty:
            continue
        a_now = now.loc[shared].to_numpy()
        a_prev = prev.loc[shared].to_numpy()
        sep = np.hypot(*(yx[a_now] - yx[b_idx]).T)
        mid = (yx[a_now] + yx[b_idx]) / 2
        off = np.hypot(*(mid - yx[a_prev]).T)
        ok = (sep <= max_separation_px) & (off <= 0.5 * sep + tolerance_px)
        if not ok.any():
            continue
        mother = int(shared[int(np.argmin(np.where(ok, sep, np.inf)))])
        rest = (track_of == mother) & (frame >= t)
        track_of[rest] = next_id
        for child, par in list(parents.items()):
            if par == mother:
                parents[child] = next_id
        parents[next_id] = mother
        parents[b_track] = mother
        next_id += 1
    return track_of, parents


def frame_overlaps(labels: np.ndarray, iou_min: float = 0.5) -> pd.DataFrame:
    """Objects of consecutive frames whose masks overlap with IoU >= ``iou_min``.

    With ``iou_min`` >= 0.5 each object has at most one such partner in the
    previous frame and one in the next (two masks cannot both cover more than
    half of a third's union with each).

    Parameters
    ----------
    labels : (T, Y, X) int array
        Segmentation labels (ids unique per frame). Not modified.
    iou_min : float, optional

    Returns
    -------
    pandas.DataFrame
        ``frame`` (the later frame), ``label_prev``, ``label_id``, ``iou``.
    """
    labels = np.asarray(labels)
    rows = []
    for t in range(1, labels.shape[0]):
        pa_, pb_, iou = label_overlaps(labels[t - 1], labels[t])
        if not len(iou):
            continue
        ok = iou >= iou_min
        rows.append(pd.DataFrame({"frame": t, "label_prev": pa_[ok], "label_id": pb_[ok],
                                  "iou": iou[ok]}))
    if not rows:
        return pd.DataFrame({"frame": pd.Series(dtype=np.int64),
                             "label_prev": pd.Series(dtype=np.int64),
                             "label_id": pd.Series(dtype=np.int64),
                             "iou": pd.Series(dtype=float)})
    return pd.concat(rows, ignore_index=True)


def repair_overlap_swaps(features: pd.DataFrame, track_of: np.ndarray,
                         parents: dict[int, int], overlaps: pd.DataFrame
                         ) -> tuple[np.ndarray, dict[int, int], int]:
    """Make tracks follow unambiguous mask overlap between consecutive frames.

    btrack links centroids. When a cell is engulfed by another, or two cells
    touch, centroids can coincide (an inner cell's and its host's ring share
    a centre) and the tracker may exchange identities. An object ``o`` at
    frame ``t`` whose mask overlaps an object ``p`` at ``t - 1`` with IoU >=
    0.5 (unique both ways, :func:`frame_overlaps`) is the same cell as ``p``;
    if btrack put ``o`` in track ``A`` and ``p`` in track ``B != A``, the parts
    of ``A`` and ``B`` from ``t`` on are exchanged (this also joins a track
    that ended at ``t - 1`` to one that starts at ``t``). Frames are processed
    in order, so later checks see earlier repairs. Children of ``A`` / ``B``
    that start after ``t`` follow their mother's part.

    Parameters
    ----------
    features : pandas.DataFrame
        ``frame``, ``label_id`` per object.
    track_of : (N,) int array
        Track id per object (not modified).
    parents : dict
        Child track id -> parent track id (not modified).
    overlaps : pandas.DataFrame
        :func:`frame_overlaps` of the same labels.

    Returns
    -------
    track_of, parents, n_swaps
    """
    track_of = track_of.copy()
    parents = dict(parents)
    if overlaps is None or overlaps.empty or len(features) == 0:
        return track_of, parents, 0
    frame = features["frame"].to_numpy(np.int64)
    row_of = {(int(f), int(lab)): i for i, (f, lab) in
              enumerate(zip(frame, features["label_id"].to_numpy(np.int64), strict=True))}
    first = pd.Series(frame).groupby(track_of).min().to_dict()
    n_swaps = 0
    for ov in overlaps.sort_values(["frame", "label_id"], kind="stable").itertuples(index=False):
        t = int(ov.frame)
        i_o = row_of.get((t, int(ov.label_id)))
        i_p = row_of.get((t - 1, int(ov.label_prev)))
        if i_o is None or i_p is None:
            continue
        a, b = int(track_of[i_o]), int(track_of[i_p])
        if a == b:
            continue
        ra = (track_of == a) & (frame >= t)
        rb = (track_of == b) & (frame >= t)
        track_of[ra], track_of[rb] = b, a
        for child, par in list(parents.items()):
            if par in (a, b) and first.get(child, -1) > t:
                parents[child] = b if par == a else a
        for tid in (a, b):
            sel = frame[track_of == tid]
            if sel.size:
                first[tid] = int(sel.min())
        n_swaps += 1
    present = set(np.unique(track_of).tolist())
    parents = {c: (p if p in present else 0) for c, p in parents.items() if c in present}
    return track_of, parents, n_swaps


def relink_by_brightness(features: pd.DataFrame, track_of: np.ndarray,
                         parents: dict[int, int], column: str, change: float, match: float,
                         max_jump_px: float, max_gap_frames: int, max_area_ratio: float = 1.5,
                         n_ref: int = 3) -> tuple[np.ndarray, dict[int, int], int]:
    """Give a track's continuation to the ended track whose brightness it has.

    Cells of one population differ in brightness (expression of the label)
    and keep it from frame to frame; the tracker links centroids only. When a
    cell moves into another (cell-in-cell) the inner cell lands where its
    host was: the host's track may continue onto the inner cell while the
    inner cell's own track ends. A link of track ``H`` onto object ``b``
    whose mean intensity differs from ``H``'s previous object's by more than
    ``change`` (absolute log ratio; a dying cell fades more slowly) is given
    to the track ``J`` that ended at most ``max_gap_frames`` + 1 frames
    before ``b``, without daughters, within ``max_jump_px`` of ``b``, whose
    recent brightness (its last ``n_ref`` objects) ``b`` matches within
    ``match`` and better than half of ``H``'s change, and whose recent area
    is within a factor ``max_area_ratio`` of ``b``'s (a fragment's mean
    intensity can match by chance): ``H``'s part from
    ``b`` on becomes ``J``'s (with ``H``'s later daughters) and ``H`` ends
    before ``b``. A track ``N`` that starts in ``b``'s frame, without a
    parent or as ``H``'s sister (the tracker may call the break a
    division), is a candidate too, under the same conditions with ``H``'s
    recent brightness and area (up to the link) matched by ``N``'s first
    object, when ``b`` is smaller than ``H``'s recent area by more than
    that factor: the inner cell got a new id while its own id went on to a
    piece of its host's ring. Then ``H`` and ``N`` exchange their parts from
    ``b`` on (``N`` takes ``b``). The closest match wins; links are examined
    in frame order and each relink is seen by later checks.

    Parameters
    ----------
    features : pandas.DataFrame
        ``frame``, ``y_px``, ``x_px``, ``area_px`` and ``column`` per object.
    track_of : (N,) int array
        Track id per object (not modified).
    parents : dict
        Child track id -> parent track id, 0 for none (not modified).
    column : str
        Mean-intensity column of the population's own channel.
    change, match : float
        Absolute log intensity ratios: a link changing more is checked; a
        candidate must match within this.
    max_jump_px : float
        Farthest ``b`` may lie from ``J``'s last centroid.
    max_gap_frames : int
        Most frames ``J`` may have ended before ``b``'s frame minus one.
    max_area_ratio : float, optional
        Largest ratio between ``b``'s area and ``J``'s recent area.
    n_ref : int, optional
        Objects over which a track's recent brightness is the median.

    Returns
    -------
    track_of, parents, n_relinked
    """
    track_of = track_of.copy()
    parents = {int(c): int(p) for c, p in parents.items()}
    frame = features["frame"].to_numpy(np.int64)
    level = np.log(np.clip(features[column].to_numpy(float), 1e-9, None))
    yx = features[["y_px", "x_px"]].to_numpy(float)
    size = np.log(np.clip(features["area_px"].to_numpy(float), 1.0, None))
    max_size_change = np.log(max_area_ratio)
    if not np.isfinite(level).any():
        return track_of, parents, 0
    n_relinked = 0
    done: set[tuple[int, int]] = set()
    while True:
        order = np.lexsort((frame, track_of))
        tr, fr = track_of[order], frame[order]
        ref, ref_size = (pd.Series(v[order]).groupby(tr).rolling(n_ref, min_periods=1)
                         .median().to_numpy() for v in (level, size))
        same = tr[1:] == tr[:-1]
        step = np.abs(np.diff(level[order]))
        trig = np.nonzero(same & (step > change) & np.isfinite(step))[0] + 1
        last = np.r_[~same, True]
        end_i = order[last]                     # each track's last object
        end_track, end_frame, end_ref, end_size = tr[last], fr[last], ref[last], ref_size[last]
        free = ~np.isin(end_track, [p for p in parents.values() if p])   # did not divide
        start = np.r_[True, ~same]
        born_i, born_track, born_frame = order[start], tr[start], fr[start]
        born_parent = np.array([parents.get(int(t), 0) for t in born_track], dtype=np.int64)
        hit = None
        for k in sorted(trig, key=lambda k: (fr[k], tr[k])):
            h, t1, b = int(tr[k]), int(fr[k]), int(order[k])
            if (h, t1) in done:
                continue
            done.add((h, t1))
            dm = np.abs(end_ref - level[b])
            ok = ((end_track != h) & (end_frame < t1) & (end_frame >= t1 - 1 - max_gap_frames)
                  & free
                  & (np.hypot(*(yx[end_i] - yx[b]).T) <= max_jump_px)
                  & (dm <= match) & (dm < step[k - 1] / 2)
                  & (np.abs(end_size - size[b]) <= max_size_change))
            # a track born in b's frame that looks like H before the link
            dn = np.abs(level[born_i] - ref[k - 1])
            ok_n = ((born_track != h) & (born_frame == t1)
                    & (size[b] < ref_size[k - 1] - max_size_change)     # b: a piece
                    & ((born_parent == 0) | (born_parent == parents.get(h, 0)))
                    & (np.hypot(*(yx[born_i] - yx[order[k - 1]]).T) <= max_jump_px)
                    & (dn <= match) & (dn < step[k - 1] / 2)
                    & (np.abs(size[born_i] - ref_size[k - 1]) <= max_size_change))
            if ok.any() or ok_n.any():
                e, n = np.where(ok, dm, np.inf), np.where(ok_n, dn, np.inf)
                hit = ((h, t1, int(end_track[np.argmin(e)]), False) if e.min() <= n.min()
                       else (h, t1, int(born_track[np.argmin(n)]), True))
                break
        if hit is None:
            return track_of, parents, n_relinked
        h, t1, j, born = hit
        moved = (track_of == h) & (frame >= t1)
        if born:
            log.debug("track %d from frame %d exchanged with track %d born there "
                      "(brightness)", h, t1, j)
            track_of[track_of == j] = h
        else:
            log.debug("track %d from frame %d continues ended track %d (brightness)", h, t1, j)
        track_of[moved] = j
        for c, p in list(parents.items()):
            if p == h:      # daughters start after their mother's (moved) end
                parents[c] = j
            elif born and p == j:
                parents[c] = h
        n_relinked += 1


def check_divisions(features: pd.DataFrame, track_of: np.ndarray, parents: dict[int, int],
                    min_size_ratio: float, area_change: float,
                    max_gap_frames: int | None = None, max_daughter_share: float | None = None,
                    min_daughter_frames: int = 1) -> tuple[np.ndarray, dict, int]:
    """Undo divisions whose daughters do not look like the halves of a mitosis.

    A dividing cell splits into two daughters of similar size whose areas add
    up to about the mother's. Linking also "divides" a track where a small
    fragment appears beside a cell (apoptotic blebs, a sliver of a cell
    partly covered by another) or where a cell wraps around another
    (cell-in-cell: host ring + inner cell). A division is kept only when it
    has exactly two daughters, the smaller daughter's first area is at least
    ``min_size_ratio`` of the larger's, and their summed first areas lie
    within ``1 -/+ area_change`` of the mother's last area; optionally also
    each daughter's first area is at most ``max_daughter_share`` of the
    mother's last area (a cell jumping into a host, or a host ring under a
    new id, is "divided" into a daughter as big as the mother) and each
    daughter is seen in at least ``min_daughter_frames`` frames, unless the
    movie ends first (a one-frame flicker beside a cell is not a
    daughter). When the first three conditions fail, the
    daughter whose first area is closest (in ratio) to the mother's last area
    continues the mother's track (same id, the mother's parent) and the other
    daughters become new tracks without a parent; when only the last two
    fail, every daughter becomes a new track (a daughter as big as the mother
    can be the host the mother's cell moved into: continuing the mother's
    track with it would swap identities). Only a daughter that starts
    within ``max_gap_frames`` missed frames of the mother's end can continue
    it; when none does, all become new tracks.

    Parameters
    ----------
    features : pandas.DataFrame
        ``frame`` and ``area_px`` per object.
    track_of : (N,) int array
        Track id per object (not modified).
    parents : dict
        Child track id -> parent track id, 0 for none (not modified). A parent
        ends before its children start.
    min_size_ratio : float
        Smallest plausible ratio of the daughters' areas (smaller / larger).
    area_change : float
        Largest relative change of total area across the division.
    max_gap_frames : int, optional
        Most missed frames between the mother's end and its heir's start
        (the tracker's gap); ``None``: no limit.
    max_daughter_share : float, optional
        Largest first area of a daughter as a fraction of the mother's last
        area; ``None``: no limit.
    min_daughter_frames : int, optional
        Fewest frames a daughter is seen in, unless it starts too close to
        the last frame of ``features`` for that; default 1: no limit.

    Returns
    -------
    track_of : (N,) int array
    parents : dict
    n_undone : int
        Divisions undone.
    """
    track_of = track_of.copy()
    parents = {int(c): int(p) for c, p in parents.items()}
    frame = features["frame"].to_numpy(np.int64)
    area = features["area_px"].to_numpy(float)
    last_frame = int(frame.max()) if frame.size else 0
    n_undone = 0
    while True:
        df = pd.DataFrame({"track": track_of, "frame": frame, "area": area})
        ordered = df.sort_values(["track", "frame"], kind="stable")
        first = ordered.drop_duplicates("track").set_index("track")
        last = ordered.drop_duplicates("track", keep="last").set_index("track")
        n_seen = ordered.groupby("track")["frame"].nunique()
        children: dict[int, list[int]] = {}
        for c, p in parents.items():
            if p and c in first.index and p in last.index:
                children.setdefault(p, []).append(c)
        bad = None
        for mother in sorted(children, key=lambda m: (last.at[m, "frame"], m)):
            kids = sorted(children[mother])
            a = first.loc[kids, "area"].to_numpy(float)
            m_area = float(last.at[mother, "area"])
            lasting = (n_seen.loc[kids].to_numpy() >= min_daughter_frames) \
                | (first.loc[kids, "frame"].to_numpy() + min_daughter_frames - 1 > last_frame)
            halves = (len(kids) == 2 and a.min() >= min_size_ratio * a.max()
                      and abs(a.sum() / max(m_area, 1.0) - 1.0) <= area_change)
            if not halves or not bool(lasting.all()) or (
                    max_daughter_share is not None and a.max() > max_daughter_share * m_area):
                bad = (mother, kids, a, m_area, halves)
                break
        if bad is None:
            return track_of, parents, n_undone
        mother, kids, a, m_area, halves = bad
        cost = np.abs(np.log(np.maximum(a, 1.0) / max(m_area, 1.0)))
        if halves:      # a mother-sized daughter may be another cell: no heir
            cost[:] = np.inf
        if max_gap_frames is not None:
            gap = first.loc[kids, "frame"].to_numpy(np.int64) - int(last.at[mother, "frame"]) - 1
            cost[gap > max_gap_frames] = np.inf
        heir = kids[int(np.argmin(cost))] if np.isfinite(cost).any() else None
        if heir is not None:
            track_of[track_of == heir] = mother
            for c, p in list(parents.items()):
                if p == heir:
                    parents[c] = mother
            parents.pop(heir, None)
        for k in kids:
            if k != heir:
                parents[k] = 0
        n_undone += 1


def link_objects(features: pd.DataFrame, params: TrackingParams, pixel_size_um: float,
                 frame_interval_min: float, shape_yx: tuple[int, int],
                 btrack_log_level: int = logging.WARNING,
                 overlaps: pd.DataFrame | None = None,
                 brightness_column: str | None = None) -> pd.DataFrame:
    """Link objects over time with btrack.

    Parameters
    ----------
    features : pandas.DataFrame
        One row per object with at least ``frame``, ``y_px``, ``x_px``.
    params : TrackingParams
        Physical tracking settings of the population.
    pixel_size_um, frame_interval_min : float
        Imaging calibration used to convert ``params``.
    shape_yx : tuple of int
        Image size in pixels.
    btrack_log_level : int, optional
        Level of btrack's logger.
    overlaps : pandas.DataFrame, optional
        :func:`frame_overlaps` of the labels (needs ``label_id`` in
        ``features``): btrack's links are then corrected to follow
        unambiguous mask overlap (:func:`repair_overlap_swaps`) before
        divisions are split.
    brightness_column : str, optional
        Mean-intensity column of the population's own channel: with
        ``params.relink_brightness_change`` set, links that change the
        brightness are checked (:func:`relink_by_brightness`) after the
        overlap repair.

    Returns
    -------
    pandas.DataFrame
        Same index and length as ``features``, columns :data:`LINK_COLUMNS`.
        Every object belongs to exactly one track. Divisions appear as two
        tracks whose ``parent_track_id`` is the mother track (targets only).
        With fewer than two objects or two frames, or when btrack finds no
        frames close enough to link, every object is its own track.
    """
    for col in ("frame", "y_px", "x_px"):
        if col not in features:
            raise KeyError(f"features lack column {col!r}")
    n = len(features)
    frame = features["frame"].to_numpy(np.int64)
    if n == 0:
        return _singletons(0).set_index(features.index)
    if n < 2 or np.unique(frame).size < 2:
        log.info("%d object(s) in %d frame(s): nothing to link", n, np.unique(frame).size)
        return _singletons(n).set_index(features.index)

    cfg = btrack_config(params, pixel_size_um, frame_interval_min, shape_yx)
    tracks = _run_btrack(frame, features["y_px"].to_numpy(float),
                         features["x_px"].to_numpy(float), cfg, params.optimise,
                         btrack_log_level)
    track_of = np.zeros(n, dtype=np.int64)
    parent_of: dict[int, int] = {}
    for tid, parent, refs in tracks:
        refs = np.asarray(refs)
        clash = track_of[refs] != 0
        if clash.any():
            log.warning("btrack put %d object(s) in two tracks; keeping the first",
                        int(clash.sum()))
        track_of[refs[~clash]] = tid
        parent_of[tid] = parent if parent != tid else 0
    missing = track_of == 0
    if missing.any():
        # objects btrack left out (e.g. unusable frames) become one-object tracks
        log.info("%d object(s) not in any btrack track: kept as single-object tracks",
                 int(missing.sum()))
        first = int(track_of.max()) + 1
        track_of[missing] = np.arange(first, first + int(missing.sum()))
    present = set(np.unique(track_of).tolist())
    parents = {t: (p if p in present else 0) for t, p in parent_of.items() if t in present}
    if overlaps is not None and "label_id" in features:
        track_of, parents, n_swaps = repair_overlap_swaps(features, track_of, parents, overlaps)
        if n_swaps:
            log.info("%d link(s) changed to follow mask overlap (IoU >= 0.5) between frames",
                     n_swaps)
    if params.relink_brightness_change is not None and brightness_column in features \
            and "area_px" in features:
        track_of, parents, n_relinked = relink_by_brightness(
            features, track_of, parents, brightness_column, params.relink_brightness_change,
            params.relink_brightness_match, params.relink_max_jump_um / pixel_size_um,
            max_lost_frames(params, frame_interval_min), params.relink_max_area_ratio)
        if n_relinked:
            log.info("%d track continuation(s) given to an ended track, or exchanged with a "
                     "track born there, of the same brightness (%s)", n_relinked,
                     brightness_column)
    if params.divisions:
        n_before = sum(1 for p in parents.values() if p)
        track_of, parents = split_divisions(
            features, track_of, parents,
            max_separation_px=2 * params.division_distance_um / pixel_size_um,
            tolerance_px=2 * params.position_noise_um / pixel_size_um)
        log.info("%d daughter tracks found by splitting continued mothers",
                 sum(1 for p in parents.values() if p) - n_before)
    ids = np.unique(track_of)
    # a parent must end before its child starts (btrack guarantees this; make sure)
    starts = pd.Series(frame).groupby(track_of).min()
    ends = pd.Series(frame).groupby(track_of).max()
    for child, par in list(parents.items()):
        if par and ends[par] >= starts[child]:
            log.warning("track %d starts before its parent %d ends; unlinking", child, par)
            parents[child] = 0
    if params.divisions and "area_px" in features:
        track_of, parents, n_undone = check_divisions(
            features, track_of, parents, params.division_min_size_ratio,
            params.division_area_change,
            max_gap_frames=max_lost_frames(params, frame_interval_min),
            max_daughter_share=params.division_max_daughter_share,
            min_daughter_frames=max(1, math.ceil(
                params.division_min_daughter_min / frame_interval_min - 1e-9)))
        if n_undone:
            log.info("%d implausible division(s) undone (daughter sizes; see "
                     "check_divisions)", n_undone)
        ids = np.unique(track_of)
    root, gen = _lineage(ids, parents)
    out = pd.DataFrame({
        "track_id": track_of,
        "parent_track_id": np.array([parents.get(t, 0) for t in track_of], np.int64),
        "root_track_id": np.array([root[t] for t in track_of], np.int64),
        "generation": np.array([gen[t] for t in track_of], np.int64),
    }, index=features.index)
    n_div = int((out.drop_duplicates("track_id")["parent_track_id"] > 0).sum())
    log.info("linked %d objects into %d tracks (%d tracks from divisions)", n, ids.size, n_div)
    return out


# --------------------------------------------------------------------------- table


def tracks_table(features: pd.DataFrame, links: pd.DataFrame, *, plate: str, well: str,
                 field: str, population: str, pixel_size_um: float,
                 frame_interval_min: float) -> pd.DataFrame:
    """Assemble the tracks table from object features and links.

    Parameters
    ----------
    features : pandas.DataFrame
        Output of :func:`livescreen.features.object_features`.
    links : pandas.DataFrame
        Output of :func:`link_objects` (same index).
    plate, well, field, population : str
        Site and population, repeated on every row.
    pixel_size_um, frame_interval_min : float
        Calibration for the physical columns.

    Returns
    -------
    pandas.DataFrame
        Columns of :class:`TracksTable`, sorted by (track_id, frame).
    """
    px, dt = float(pixel_size_um), float(frame_interval_min)
    f = features
    icols = [c for c in f.columns if c.startswith("intensity_mean_")]
    out = pd.DataFrame({
        "plate": pd.Series([str(plate)] * len(f), index=f.index, dtype=object),
        "well": str(well), "field": str(field), "population": str(population),
        "track_id": links["track_id"].astype(np.int64),
        "frame": f["frame"].astype(np.int64),
        "time_min": f["frame"].astype(float) * dt,
        "label_id": f["label_id"].astype(np.int64),
        "y_px": f["y_px"].astype(float), "x_px": f["x_px"].astype(float),
        "y_um": f["y_px"] * px, "x_um": f["x_px"] * px,
        "area_px": f["area_px"].astype(np.int64),
        "area_um2": f["area_px"] * px * px,
        "perimeter_um": f["perimeter_px"] * px,
        "major_axis_um": f["major_axis_px"] * px,
        "minor_axis_um": f["minor_axis_px"] * px,
        "eccentricity": f["eccentricity"].astype(float),
        "solidity": f["solidity"].astype(float),
        "touches_border": f["touches_border"].astype(bool),
        **{c: f[c].astype(float) for c in icols},
        "parent_track_id": links["parent_track_id"].astype(np.int64),
        "root_track_id": links["root_track_id"].astype(np.int64),
        "generation": links["generation"].astype(np.int64),
    })
    return out.sort_values(["track_id", "frame"], kind="stable").reset_index(drop=True)


def track_site(labels: np.ndarray, image, params: TrackingParams, *, imaging: Mapping[str, Any],
               plate: str, well: str, field: str, population: str,
               btrack_log_level: int = logging.WARNING) -> pd.DataFrame:
    """Measure and track one population of one site.

    Parameters
    ----------
    labels : (T, Y, X) array of int
        Segmentation of the population (ids unique per frame).
    image : (T, C, Y, X) array, livescreen.imageio.Movie or None
        The raw movie, for per-channel mean intensities (NaN when None).
    params : TrackingParams
        Tracking settings (:func:`livescreen.track_models.tracking_params`).
    imaging : mapping
        ``config["imaging"]``: ``pixel_size_um``, ``frame_interval_min`` and
        ``channels`` (role -> channel index) used to name intensity columns.
    plate, well, field, population : str
        Identifiers written on every row.
    btrack_log_level : int, optional
        Level of btrack's logger.

    Returns
    -------
    pandas.DataFrame
        The validated tracks table (:class:`TracksTable`), possibly empty.
    """
    labels = np.asarray(labels)
    px, dt = float(imaging["pixel_size_um"]), float(imaging["frame_interval_min"])
    n_c = 0 if image is None else int(image.shape[1])
    names = channel_names(n_c, imaging.get("channels"))
    if image is not None and (tuple(image.shape[2:]) != labels.shape[1:]
                              or image.shape[0] != labels.shape[0]):
        log.warning("label stack shape %s disagrees with movie shape %s (T, C, Y, X)",
                    labels.shape, tuple(image.shape))
    feats = object_features(labels, image, names)
    log.info("%s: %d objects in %d frames", population, len(feats), labels.shape[0])
    links = link_objects(feats, params, px, dt, labels.shape[1:],
                         btrack_log_level=btrack_log_level,
                         overlaps=frame_overlaps(labels) if len(feats) else None,
                         brightness_column=f"intensity_mean_{population}")
    table = tracks_table(feats, links, plate=plate, well=well, field=field,
                         population=population, pixel_size_um=px, frame_interval_min=dt)
    return TracksTable.validate(table)


# --------------------------------------------------------------------------- outputs


def relabel_by_track(labels: np.ndarray, tracks: pd.DataFrame) -> np.ndarray:
    """Label stack whose pixel values are track ids instead of segmentation ids.

    Parameters
    ----------
    labels : (T, Y, X) array of int
        The segmentation the tracks were computed from (not modified).
    tracks : pandas.DataFrame
        Tracks table with ``frame``, ``label_id`` and ``track_id``.

    Returns
    -------
    numpy.ndarray of uint32
        Same shape as ``labels``; objects missing from ``tracks`` become 0.
    """
    from skimage.util import map_array

    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"labels must be (T, Y, X), got shape {labels.shape}")
    out = np.zeros(labels.shape, dtype=np.uint32)
    for t, grp in tracks.groupby("frame"):
        t = int(t)
        if 0 <= t < labels.shape[0]:
            out[t] = map_array(labels[t], grp["label_id"].to_numpy(labels.dtype),
                               grp["track_id"].to_numpy(np.uint32))
    return out


def to_napari(tracks: pd.DataFrame, properties: Sequence[str] = ("area_um2", "generation")
              ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[int, list[int]]]:
    """Tracks table -> napari ``Tracks`` layer data ``(data, properties, graph)``.

    Parameters
    ----------
    tracks : pandas.DataFrame
        A tracks table (e.g. ``pd.read_parquet(".../target_tracks.parquet")``).
    properties : sequence of str, optional
        Columns passed as per-vertex properties (for colouring).

    Returns
    -------
    data : (N, 4) float array
        ``[track_id, frame, y_px, x_px]`` sorted by track then frame (pixel
        coordinates, so the layer overlays the label stack and the movie).
    properties : dict of str to (N,) array
    graph : dict of int to list of int
        Child track id -> [parent track id] for tracks born by division.

    Examples
    --------
    >>> import napari, pandas as pd, tifffile              # doctest: +SKIP
    >>> df = pd.read_parquet("target_tracks.parquet")
    >>> data, props, graph = to_napari(df)
    >>> viewer = napari.Viewer()
    >>> viewer.add_labels(tifffile.imread("target_labels.tif"))
    >>> viewer.add_tracks(data, properties=props, graph=graph, name="target tracks")
    """
    df = tracks.sort_values(["track_id", "frame"], kind="stable")
    data = df[["track_id", "frame", "y_px", "x_px"]].to_numpy(dtype=float)
    props = {p: df[p].to_numpy() for p in properties}
    starts = df.drop_duplicates("track_id")
    born = starts[starts["parent_track_id"] > 0]
    graph = {int(c): [int(p)] for c, p in zip(born["track_id"], born["parent_track_id"],
                                              strict=True)}
    return data, props, graph


def check_napari_tracks(data: np.ndarray, graph: Mapping[int, Sequence[int]]) -> None:
    """Check napari's ``Tracks`` layer contract without importing napari.

    The same checks as napari's ``TrackManager``: ``data`` is (N, 4) or
    (N, 5) with integer track ids and non-negative times; every graph node and
    parent is a track id present in ``data``. Raises ``ValueError`` otherwise.
    """
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[1] not in (4, 5):
        raise ValueError(f"track data must be (N, 4|5), got {data.shape}")
    if not np.array_equal(np.floor(data[:, 0]), data[:, 0]):
        raise ValueError("track ids must be integers")
    if (data[:, 1] < 0).any():
        raise ValueError("track times must be >= 0")
    ids = set(np.unique(data[:, 0]).astype(int).tolist())
    for child, parents in graph.items():
        for node in (child, *parents):
            if node not in ids:
                raise ValueError(f"graph node {node} not found in track ids")


def write_tracks(table: pd.DataFrame, path: str | PathLike,
                 provenance: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Validate the tracks table and write it to Parquet atomically."""
    from livescreen.tables import write_table

    return write_table(table, path, TracksTable, provenance)
