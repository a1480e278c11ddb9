"""Event scoring: contact episodes, deaths, enclosures -> encounters, fates, effectors.

The entry point is :func:`score_site`; it combines the per-frame mask
measurements of :mod:`livescreen.events.measure` with the two tracks tables
(one row per object per frame) of the track stage. Each step is a small pure
function of tables; nothing is modified in place. Definitions: docs/events.md.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from livescreen.events.measure import ENCLOSURE_COLUMNS, ENCLOSURE_DTYPES
from livescreen.events.params import ScoringGrid
from livescreen.events.schemas import (
    EffectorsTable,
    EncountersTable,
    FatesTable,
    empty_like,
)

log = logging.getLogger(__name__)

NO_FRAME = -1


# ------------------------------------------------------------------ contact episodes


def _runs(frames: np.ndarray, max_break: int) -> list[tuple[int, int]]:
    """Runs of sorted unique ``frames`` joined across gaps of <= ``max_break`` missing frames."""
    if frames.size == 0:
        return []
    cut = np.nonzero(np.diff(frames) > max_break + 1)[0]
    starts = np.r_[frames[0], frames[cut + 1]]
    ends = np.r_[frames[cut], frames[-1]]
    return [(int(s), int(e)) for s, e in zip(starts, ends, strict=False)]


def _pair_runs(contacts: pd.DataFrame, max_break: int) -> list[dict]:
    """Contact runs of every (target, effector) pair, breaks of <= ``max_break`` bridged."""
    runs = []
    for (tid, eid), grp in contacts.groupby(["target_track_id", "effector_track_id"], sort=True):
        grp = grp.sort_values("frame")
        frames = grp["frame"].to_numpy(np.int64)
        px = grp["contact_px"].to_numpy(float)
        for s, e in _runs(frames, max_break):
            sel = (frames >= s) & (frames <= e)
            runs.append({"target": int(tid), "effector": int(eid), "start": s, "end": e,
                         "px": px[sel], "last_effector": int(eid)})
    return runs


def _touching(runs: list[dict], effector: int, lo: int, hi: int) -> bool:
    """Whether ``effector`` has a run among ``runs`` overlapping frames ``lo..hi``."""
    return any(r["effector"] == effector and r["start"] <= hi and r["end"] >= lo for r in runs)


def join_effector_switches(runs: list[dict], effector_xy: Mapping[tuple[int, int], np.ndarray],
                           max_break: int, max_shift_px: float) -> list[dict]:
    """Join a target's contact runs where the tracker switched the effector's id.

    An effector bound to a target hardly moves. When one effector track's
    contact with a target ends and, within ``max_break`` missed frames,
    another effector track's contact with the same target starts where the
    first effector was (centroids <= ``max_shift_px`` apart), neither track
    touching the target during the other's run, it is the same cell under a
    new id: the runs become one. It keeps the id of the run with more
    contact frames (the first on a tie: the cell that made the synapse).

    Parameters
    ----------
    runs : list of dict
        Runs of one or more targets (``target, effector, start, end, px,
        last_effector``: :func:`_pair_runs`). Not modified.
    effector_xy : mapping
        ``(effector track id, frame) -> (y, x)`` centroid in pixels.
    max_break : int
        Most missed frames between the two runs.
    max_shift_px : float
        Largest centroid distance between the first effector at its run's
        last frame and the second at its run's first frame.

    Returns
    -------
    list of dict
        Runs, joined ones replaced by their union.
    """
    by_target: dict[int, list[dict]] = {}
    for r in runs:
        by_target.setdefault(r["target"], []).append(r)
    out = []
    for tid in sorted(by_target):
        mine = sorted(by_target[tid], key=lambda r: (r["start"], r["effector"]))
        joined: list[dict] = []
        for q in mine:
            match = None
            for r in joined:
                gap = q["start"] - r["end"] - 1
                if r["effector"] == q["effector"] or not 0 <= gap <= max_break:
                    continue
                a = effector_xy.get((r["last_effector"], r["end"]))
                b = effector_xy.get((q["effector"], q["start"]))
                if a is None or b is None or float(np.hypot(*(np.asarray(a) - b))) > max_shift_px:
                    continue
                if _touching(mine, q["effector"], r["start"], r["end"]) \
                        or _touching(mine, r["last_effector"], q["start"], q["end"]):
                    continue
                match = r
                break
            if match is None:
                joined.append(dict(q))
                continue
            keep = match["effector"] if match["px"].size >= q["px"].size else q["effector"]
            match.update(effector=keep, end=q["end"], last_effector=q["last_effector"],
                         px=np.concatenate([match["px"], q["px"]]))
        out.extend(joined)
    return out


def contact_episodes(contacts: pd.DataFrame, min_frames: int, max_break: int,
                     last_frame: int, effector_xy: Mapping | None = None,
                     max_shift_px: float | None = None) -> pd.DataFrame:
    """Group per-frame contacts into episodes per (target, effector) pair.

    Parameters
    ----------
    contacts : pandas.DataFrame
        ``frame, target_track_id, effector_track_id, contact_px``.
    min_frames : int
        Shortest episode kept (frames spanned, bridged breaks included);
        episodes still going on at ``last_frame`` are kept whatever their length.
    max_break : int
        Frames without contact that are bridged.
    last_frame : int
        Last frame of the movie.
    effector_xy : mapping, optional
        ``(effector track id, frame) -> (y, x)``; with ``max_shift_px``, runs
        where the tracker switched the effector's id are joined first
        (:func:`join_effector_switches`).
    max_shift_px : float, optional

    Returns
    -------
    pandas.DataFrame
        ``target_track_id, effector_track_id, start_frame, end_frame,
        n_contact_frames, contact_px`` (mean over the contact frames),
        ``last_effector_track_id`` (the effector's id at the end: another
        than ``effector_track_id`` when a switch was joined), sorted by
        start, target, effector.
    """
    runs = _pair_runs(contacts, max_break)
    if effector_xy is not None and max_shift_px is not None:
        n = len(runs)
        runs = join_effector_switches(runs, effector_xy, max_break, max_shift_px)
        if len(runs) < n:
            log.info("%d contact(s) continued under a new effector track id: joined",
                     n - len(runs))
    rows = [(r["target"], r["effector"], r["start"], r["end"], int(r["px"].size),
             float(r["px"].mean()), r["last_effector"]) for r in runs
            if r["end"] - r["start"] + 1 >= min_frames or r["end"] >= last_frame]
    cols = ["target_track_id", "effector_track_id", "start_frame", "end_frame",
            "n_contact_frames", "contact_px", "last_effector_track_id"]
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=float if c == "contact_px" else np.int64)
                             for c in cols})
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values(["start_frame", "target_track_id", "effector_track_id"],
                           kind="stable").reset_index(drop=True)


def effector_positions(effectors: pd.DataFrame) -> dict[tuple[int, int], np.ndarray]:
    """``(track id, frame) -> (y, x)`` centroid in pixels from an effector tracks table."""
    if effectors.empty:
        return {}
    keys = zip(effectors["track_id"].astype(int), effectors["frame"].astype(int), strict=True)
    xy = effectors[["y_px", "x_px"]].to_numpy(float)
    return dict(zip(keys, xy, strict=True))


# ------------------------------------------------------------------ per-track signals


def _background_lookup(background: pd.DataFrame, channel: int | None, n_frames: int,
                       column: str) -> np.ndarray:
    """(n_frames,) background level (or noise) of ``channel``; 0 / NaN when unknown."""
    out = np.full(n_frames, 0.0 if column == "background" else np.nan)
    if channel is None or background is None or background.empty:
        return out
    sel = background[background["channel"] == channel]
    frames = sel["frame"].to_numpy(np.int64)
    ok = (frames >= 0) & (frames < n_frames)
    out[frames[ok]] = sel[column].to_numpy(float)[ok]
    return out


def _first_run(mask: np.ndarray, frames: np.ndarray, min_frames: int) -> int:
    """Index of the first run of consecutive True (by frame number) at least ``min_frames`` long."""
    i, n = 0, len(mask)
    while i < n:
        if not mask[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and mask[j + 1] and frames[j + 1] == frames[j] + 1:
            j += 1
        if frames[j] - frames[i] + 1 >= min_frames:
            return i
        i = j + 1
    return -1


def death_from_reporter(frames: np.ndarray, signal: np.ndarray, snr: np.ndarray,
                        grid: ScoringGrid) -> tuple[int, int]:
    """Death onset and death frame of one track from its death-reporter signal.

    Onset: first frame of the first run of ``reporter_min_frames`` consecutive
    frames with background-subtracted reporter >= ``reporter_min_snr`` x the
    background noise. Death frame: first frame from the onset at which the
    reporter reaches ``plateau_fraction`` of its peak within
    ``plateau_search_frames`` (the end of the dying phase).

    Parameters
    ----------
    frames : (n,) int array
        The track's frames, increasing.
    signal, snr : (n,) float arrays
        Background-subtracted reporter and the same divided by the noise.
    grid : ScoringGrid

    Returns
    -------
    (onset_frame, death_frame) : tuple of int
        ``(-1, -1)`` when the reporter never rises.
    """
    pos = np.nan_to_num(snr, nan=0.0) >= grid.reporter_min_snr
    i = _first_run(pos, frames, grid.reporter_min_frames)
    if i < 0:
        return NO_FRAME, NO_FRAME
    onset = int(frames[i])
    win = (frames >= onset) & (frames <= onset + grid.plateau_search_frames)
    peak = np.nanmax(signal[win])
    j = np.nonzero(win & (signal >= grid.plateau_fraction * peak))[0][0]
    return onset, int(frames[j])


def death_from_morphology(frames: np.ndarray, area: np.ndarray, ends_in_field: bool,
                          grid: ScoringGrid) -> tuple[int, int]:
    """Death from shrinkage followed by the track ending inside the field.

    A track is dead when it ends away from the border at least
    ``end_margin_frames`` before the movie's end and its area stays at or
    below ``shrink_area_fraction`` x its earlier size (largest 3-frame rolling
    median before) from some frame to its end. Onset = death frame = that frame.

    Parameters
    ----------
    frames : (n,) int array
    area : (n,) float array
    ends_in_field : bool
        The track ends away from border and movie end.
    grid : ScoringGrid

    Returns
    -------
    (onset_frame, death_frame) : tuple of int
    """
    if not ends_in_field or len(frames) < 2:
        return NO_FRAME, NO_FRAME
    ref = pd.Series(area).rolling(3, min_periods=1).median().cummax().shift(1).to_numpy()
    shrunk = area <= grid.shrink_area_fraction * np.nan_to_num(ref, nan=np.inf)
    # shrunk from index i to the end
    tail = np.flip(np.cumprod(np.flip(shrunk))).astype(bool)
    idx = np.nonzero(tail)[0]
    if idx.size == 0:
        return NO_FRAME, NO_FRAME
    return int(frames[idx[0]]), int(frames[idx[0]])


def run_host(run: pd.DataFrame) -> int:
    """Host of a run of enclosed frames: the segmented host seen in most frames.

    Parameters
    ----------
    run : pandas.DataFrame
        Per-frame enclosures of one inner cell (``frame``, ``host_track_id``).

    Returns
    -------
    int
        The non-zero host enclosing it in most frames (ties: the first seen),
        else 0 (its host ring was never segmented).
    """
    seen = run.loc[run["host_track_id"] > 0].drop_duplicates(["frame", "host_track_id"])
    if seen.empty:
        return 0
    n = seen.groupby("host_track_id", sort=False)["frame"].agg(["size", "min"])
    return int(n.sort_values(["size", "min"], ascending=[False, True]).index[0])


def enclosure_onset(enclosures: pd.DataFrame, min_frames: int, max_break: int,
                    lead_gap: int = 0) -> pd.DataFrame:
    """First sustained enclosure of each inner target: onset frame and host.

    The run of enclosed frames is the inner cell's, whichever host enclosed it
    in each frame: a host ring seen only in the image in some frames (host 0)
    and segmented in others is one enclosure (:func:`run_host` names the host).
    Enclosed frames before the first sustained run, each at most ``lead_gap``
    frames without enclosure before the next, start it: right after the
    internalisation, the thin host ring is often lost again for a few frames
    before it is seen for good, and the first sight is the onset.

    Parameters
    ----------
    enclosures : pandas.DataFrame
        ``frame, inner_track_id, host_track_id, ...`` (per-frame enclosures).
    min_frames : int
        Shortest sustained enclosure.
    max_break : int
        Frames without enclosure bridged inside a run.
    lead_gap : int, optional
        Frames without enclosure bridged back to earlier enclosed frames that
        are too short to be a run themselves (0: none).

    Returns
    -------
    pandas.DataFrame
        ``inner_track_id, host_track_id, internalization_frame, last_enclosed_frame``.
    """
    rows = []
    for inner, grp in enclosures.groupby("inner_track_id"):
        frames = np.unique(grp["frame"].to_numpy(np.int64))
        for s, e in _runs(frames, max_break):
            if e - s + 1 >= min_frames:
                earlier = frames[frames < s][::-1]
                for f in earlier:
                    if s - f - 1 > lead_gap:
                        break
                    s = int(f)
                run = grp[(grp["frame"] >= s) & (grp["frame"] <= e)]
                rows.append((int(inner), run_host(run), s, e))
                break
    cols = ["inner_track_id", "host_track_id", "internalization_frame", "last_enclosed_frame"]
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=np.int64) for c in cols})
    out = pd.DataFrame(rows, columns=cols).sort_values(["inner_track_id",
                                                        "internalization_frame"])
    return out.drop_duplicates("inner_track_id", keep="first").reset_index(drop=True)


def merger_pairs(mergers: pd.DataFrame, min_frames: int) -> pd.DataFrame:
    """Candidate (inner, host) pairs of mergers, for joining the inner cell's track pieces.

    The object that a track ended into may itself be a new track of an
    attacked cell that jumped into its host (inner cell plus ring); before
    the merger is scored its pieces are joined like those of an enclosed
    cell (:func:`livescreen.events.measure.stitch_engulfments`).

    Parameters
    ----------
    mergers : pandas.DataFrame
        :data:`livescreen.events.measure.MERGER_COLUMNS` rows.
    min_frames : int
        Shortest merger.

    Returns
    -------
    pandas.DataFrame
        ``inner_track_id`` (the object merged into), ``host_track_id`` (the
        ended track), ``internalization_frame`` (the merger's first frame).
    """
    g = mergers.groupby(["ended_track_id", "into_track_id"], sort=True)
    out = g.agg(n=("frame", "size"), first=("frame", "min")).reset_index()
    out = out[out["n"] >= min_frames]
    return pd.DataFrame({"inner_track_id": out["into_track_id"].astype(np.int64),
                         "host_track_id": out["ended_track_id"].astype(np.int64),
                         "internalization_frame": out["first"].astype(np.int64)})


def drop_host_remnants(states: pd.DataFrame, episodes: pd.DataFrame, window: int
                       ) -> pd.DataFrame:
    """Undo enclosures of host remnants and of hosts that carry their inner cell.

    When an attacked cell and part of its host ring are segmented as one
    object, what is left of the host can lie inside that object and look
    enclosed by it: the host then appears as an inner cell of its own inner
    cell. A target that was never in contact, enclosed by a host that is
    itself enclosed within ``window`` frames of that, is such a remnant; its
    enclosure is dropped (a cell inside a cell inside a cell is rare). On
    the 15 demo sites' own masks this removed 4 false cell-in-cell events
    and no true one; on their true labels 1 false and 1 true
    (docs/events.md). The mirror image: a target that hosts an inner cell
    and is itself enclosed from that inner cell's onset on (or up to
    ``window`` frames before it) carries the inner cell under its id (the
    tracker moved the host's id onto the inner cell, or the two were one
    object): its own enclosure is dropped too, unless the two enclose each
    other, or it was contacted and its inner cell never was (then it is the
    attacked cell, gone inside under its own id). Never contacted, its fate
    is ``inner_piece`` (``piece_of`` that inner cell): a death it shows is
    the inner cell's.

    Parameters
    ----------
    states : pandas.DataFrame
        :func:`target_states`. Not modified.
    episodes : pandas.DataFrame
        :func:`contact_episodes`.
    window : int
        Frames between the two enclosures' onsets.

    Returns
    -------
    pandas.DataFrame
        ``states``, or a copy with those targets' ``host_track_id`` 0 and
        ``internalization_frame`` -1 (and ``piece_of`` set, above).
    """
    contacted = set(episodes["target_track_id"].astype(int))
    enclosed = states[states["internalization_frame"] >= 0]
    drop = []
    for tid, st in enclosed.iterrows():
        host = int(st["host_track_id"])
        if int(tid) in contacted or host not in enclosed.index:
            continue
        if abs(int(enclosed.at[host, "internalization_frame"])
               - int(st["internalization_frame"])) <= window:
            drop.append(int(tid))
    if drop:
        log.info("targets %s lie inside an inner cell and were never contacted: host "
                 "remnants, not cell-in-cell", drop)
    # a host is not an inner cell from its inner cell's onset on (less ``window``):
    # that enclosure is its inner cell seen again, carrying the host's id
    kept = enclosed.drop(index=drop)
    held = kept[kept["host_track_id"] > 0].sort_values("internalization_frame", kind="stable")
    carried = {}        # host -> the inner cell it carries under its id
    for tid, st in kept.iterrows():
        inner = held[held["host_track_id"] == tid]
        if inner.empty or int(st["host_track_id"]) in inner.index:
            continue        # hosts nobody, or the two enclose each other
        if int(st["internalization_frame"]) < int(inner["internalization_frame"].iloc[0]) - window:
            continue        # enclosed first, host later
        if int(tid) in contacted and not contacted.intersection(inner.index.astype(int)):
            continue        # the attacked one is this track: its enclosure is the event
        carried[int(tid)] = int(inner.index[0])
    if carried:
        log.info("targets %s host an inner cell (%s) and look enclosed themselves from about "
                 "its onset on: that inner cell under the host's id, not a second "
                 "cell-in-cell", list(carried), list(carried.values()))
    if not drop and not carried:
        return states
    out = states.copy()
    out.loc[drop + list(carried), "host_track_id"] = 0
    out.loc[drop + list(carried), "internalization_frame"] = NO_FRAME
    # never contacted: the inner cell seen again (fate inner_piece)
    return _mark_pieces(out, {t: c for t, c in carried.items() if t not in contacted})


def _mark_pieces(states: pd.DataFrame, pieces: Mapping[int, int]) -> pd.DataFrame:
    """``states`` (modified): targets of ``pieces`` not enclosed, ``piece_of`` their inner cell."""
    if pieces:
        if "piece_of" not in states.columns:
            states["piece_of"] = np.int64(0)
        states.loc[list(pieces), ["host_track_id", "internalization_frame"]] = [0, NO_FRAME]
        states.loc[list(pieces), "piece_of"] = list(pieces.values())
    return states


#: A track born with at least this share of its first mask inside another
#: object's previous mask came out of that object (:func:`drop_inner_pieces`).
BORN_INSIDE_MIN_COVER = 0.5


def drop_inner_pieces(states: pd.DataFrame, episodes: pd.DataFrame, births: pd.DataFrame
                      ) -> pd.DataFrame:
    """Undo enclosures of never-contacted tracks that are an inner cell seen again.

    Once an inner cell is enclosed, its segmentation comes and goes: it is
    segmented together with its host ring for some frames, then apart again
    under a new track id, or its track breaks as it moves into the host.
    Such a new track is born inside the host's (or the inner cell's own)
    previous mask and is enclosed by the same host, so it would count the
    engulfment a second time, as a spontaneous one. A target that was never
    in contact, enclosed, and born with >= :data:`BORN_INSIDE_MIN_COVER` of
    its first mask inside the previous mask of an object that is either an
    inner cell enclosed no later than it, or the host of such an inner cell
    whose track ended before it began (while the inner cell is still
    followed, a new track inside its host is another cell moving in), is
    that inner cell again: its enclosure is dropped. See docs/events.md for
    the counts on the demo sites.

    Parameters
    ----------
    states : pandas.DataFrame
        :func:`target_states`. Not modified.
    episodes : pandas.DataFrame
        :func:`contact_episodes`.
    births : pandas.DataFrame
        :func:`livescreen.events.measure.track_births`.

    Returns
    -------
    pandas.DataFrame
        ``states``, or a copy with those targets' ``host_track_id`` 0,
        ``internalization_frame`` -1 and ``piece_of`` the inner cell's track
        (their fate is ``inner_piece``, :func:`fates_table`).
    """
    contacted = set(episodes["target_track_id"].astype(int))
    enclosed = states[states["internalization_frame"] >= 0]
    born = births[births["cover"] >= BORN_INSIDE_MIN_COVER].set_index("track_id")
    drop = []
    for tid, st in enclosed.iterrows():
        tid = int(tid)
        if tid in contacted or tid not in born.index:
            continue
        x = int(born.at[tid, "born_in_track_id"])
        onset = int(st["internalization_frame"])
        earlier = enclosed[(enclosed.index != tid)
                           & (enclosed["internalization_frame"] <= onset)]
        inner = earlier[(earlier.index == x) | ((earlier["host_track_id"] == x)
                                                 & (earlier["last_frame"] < born.at[tid, "frame"]))]
        if len(inner):
            drop.append((tid, int(inner["internalization_frame"].idxmin())))
    if not drop:
        return states
    log.info("targets %s were never contacted and were born inside an enclosed cell or its "
             "host: that inner cell (%s) seen again, not a second cell-in-cell",
             [t for t, _ in drop], [i for _, i in drop])
    return _mark_pieces(states.copy(), dict(drop))


def _contact_end(episodes: pd.DataFrame, target: int, frame: int, window: int) -> int:
    """Last frame of ``target``'s latest contact ending within ``window`` frames before ``frame``.

    -1 when there is none.
    """
    e = episodes.loc[episodes["target_track_id"] == target, "end_frame"]
    e = e[(e < frame) & (e >= frame - window)]
    return int(e.max()) if len(e) else -1


def _split_again(births: pd.DataFrame | None, into: int, end: int, in_enclosure: set[int],
                 states: pd.DataFrame, min_frames: int) -> list[int]:
    """Tracks born out of ``into`` in the 2 frames after a merger's ``end``, apart since.

    Never in an enclosure (not in ``in_enclosure``: an inner cell seen again
    inside its host, or a host ring segmented apart again from its inner
    cell, is not a free cell) and, when in ``states``, followed for at least
    ``min_frames`` frames.
    """
    if births is None or births.empty:
        return []
    b = births[(births["born_in_track_id"] == into) & (births["frame"] > end)
               & (births["frame"] <= end + 2) & (births["cover"] >= BORN_INSIDE_MIN_COVER)]
    out = []
    for z in b["track_id"].astype(int):
        if z in in_enclosure or (z in states.index and int(states.at[z, "last_frame"])
                             - int(states.at[z, "first_frame"]) + 1 < min_frames):
            continue
        out.append(z)
    return out


def merger_enclosures(mergers: pd.DataFrame, states: pd.DataFrame, episodes: pd.DataFrame,
                      grid: ScoringGrid, births: pd.DataFrame | None = None,
                      enclosed: set[int] | None = None,
                      hosts: set[int] | None = None) -> pd.DataFrame:
    """Enclosures read from mergers: an inner cell and its host segmented as one object.

    A merger (:func:`livescreen.events.measure.track_mergers`) counts when
    the track that ended did so alive (no death found) and not by division,
    and the other object kept covering its last mask for at least
    ``cic_min_frames`` (so it did not leave the field, even near the edge).
    Of the two cells, the one whose contact with an effector ended at most
    ``cic_window`` frames before the merger is the inner cell and the other
    its host (the attack triggers the engulfment of the attacked cell); when
    both had such a contact, the one whose contact ended later (the
    engulfment follows the attack within minutes). The merger starts at the
    earliest ``last_frame`` of its rows (a gap of the ended track before its
    end, :func:`livescreen.events.measure.track_mergers`).
    Weaker evidence than a visible host, so stricter than
    :func:`encounter_outcomes`' window: the contact must have ended (a merger
    during a contact is often the effector pushing two cells together), and
    mergers of two cells neither of which was in contact are not counted
    (more often two touching cells segmented as one than a spontaneous
    engulfment). A merger into a track that already hosts another enclosed
    cell (from the merger's frame or earlier) is not counted: a host takes
    in one cell at a time, and the track that ended is the host's own
    earlier id (its id changed as it became a ring) or a piece of the cell
    already inside. With ``births``: when, within 2 frames after the merger
    ends, a track is born out of the merged object
    (:func:`livescreen.events.measure.track_births`, cover >=
    :data:`BORN_INSIDE_MIN_COVER`), is followed for at least
    ``cic_min_frames`` frames and is never enclosed (not in ``enclosed``),
    the two cells came apart again, free: they were only segmented
    together, and the merger is not counted. An inner cell seen again
    inside its host is enclosed there, and a host ring segmented apart
    again hosts it (``hosts``); a track seen only in the movie's
    last frame shows neither. Not checked for a merger lasting
    ``cic_window`` frames or longer: free cells segmented together part
    within minutes, and an inner cell dying in its host can break up at
    the end of a long merger.

    Parameters
    ----------
    mergers : pandas.DataFrame
        :data:`livescreen.events.measure.MERGER_COLUMNS` rows.
    states : pandas.DataFrame
        :func:`target_states` (indexed by ``target_track_id``).
    episodes : pandas.DataFrame
        :func:`contact_episodes`.
    grid : ScoringGrid
    births : pandas.DataFrame, optional
        :func:`livescreen.events.measure.track_births`.
    enclosed : set of int, optional
        Tracks enclosed in any frame (the measured enclosures' inner tracks).
    hosts : set of int, optional
        Tracks hosting another in any frame (the measured enclosures' hosts).

    Returns
    -------
    pandas.DataFrame
        Enclosure rows (``frame, inner_track_id, host_track_id,
        boundary_fraction`` NaN, ``inside_fraction`` = the merger's cover,
        ``signal_fraction`` NaN), one per frame of each counted merger.
    """
    rows = []
    in_enclosure = (enclosed or set()) | (hosts or set())
    hosting = pd.Series(dtype=np.int64)
    if {"host_track_id", "internalization_frame"} <= set(states.columns):
        held = states[(states["host_track_id"] > 0) & (states["internalization_frame"] >= 0)]
        hosting = held.groupby("host_track_id")["internalization_frame"].min()
    for (x, y), grp in mergers.groupby(["ended_track_id", "into_track_id"], sort=True):
        x, y = int(x), int(y)
        last = int(grp["last_frame"].min())
        if len(grp) < grid.cic_min_frames or x not in states.index:
            continue
        st = states.loc[x]
        if int(st["death_frame"]) >= 0 or bool(st["divided"]):
            continue
        end_y = _contact_end(episodes, y, last + 1, grid.cic_window)
        end_x = _contact_end(episodes, x, last + 1, grid.cic_window)
        if max(end_x, end_y) < 0:
            continue
        inner, host = (y, x) if end_y >= end_x else (x, y)
        if host == y and y in hosting.index and int(hosting[y]) <= last + 1:
            log.info("merger of track %d into track %d at frame %d not counted: track %d "
                     "already hosts another cell (from frame %d); the ended track is its own "
                     "earlier id or that cell's", x, y, last + 1, y, int(hosting[y]))
            continue
        apart = [] if len(grp) >= grid.cic_window else _split_again(
            births, y, int(grp["frame"].max()), in_enclosure, states, grid.cic_min_frames)
        if apart:
            log.info("merger of tracks %d and %d not counted: track(s) %s came out of the "
                     "merged object free after it", x, y, apart)
            continue
        log.info("merger: track %d ended inside track %d's mask at frame %d: %d enclosed by "
                 "%d (the contacted cell is the inner one)", x, y, last + 1, inner, host)
        rows += [(int(r.frame), inner, host, np.nan, float(r.cover), np.nan)
                 for r in grp.itertuples(index=False)]
    return pd.DataFrame(rows, columns=ENCLOSURE_COLUMNS).astype(
        {"frame": np.int64, **ENCLOSURE_DTYPES})


def _intensity_column(tracks: pd.DataFrame, role: str) -> str | None:
    col = f"intensity_mean_{role}"
    return col if col in tracks.columns else None


def dividing_tracks(targets: pd.DataFrame) -> set[int]:
    """Tracks that ended by a division: two or more daughters in ``targets``.

    Whether a split looks like a mitosis is the tracker's call
    (:func:`livescreen.track.check_divisions`: two daughters of about half
    the mother, each followed for a while). This stage can leave a mother
    with one daughter (objects under effectors dropped, engulfment pieces
    joined), and one daughter is a continuation, not a division.

    Parameters
    ----------
    targets : pandas.DataFrame
        Target tracks table (``track_id, parent_track_id``). Not modified.

    Returns
    -------
    set of int
        Track ids of mothers.
    """
    kids = targets[(targets["parent_track_id"] > 0)
                   & (targets["parent_track_id"] != targets["track_id"])]
    n = kids.drop_duplicates("track_id")["parent_track_id"].value_counts()
    present = set(targets["track_id"].astype(int))
    return {int(m) for m, k in n.items() if k >= 2 and int(m) in present}


def _core_rows(enclosures: pd.DataFrame) -> pd.Series:
    """Rows of the bright-core route: host 0 and no ``signal_fraction``."""
    return (enclosures["host_track_id"] == 0) & enclosures["signal_fraction"].isna()


def drop_core_rows_of_enclosed(enclosures: pd.DataFrame, min_frames: int,
                               lead_gap: int = 0, max_lead: int = 0, max_break: int = 1
                               ) -> pd.DataFrame:
    """Drop bright-core rows that would move another route's onset a little earlier.

    The bright core (:func:`livescreen.events.measure.frame_core_enclosures`)
    can appear as the host starts to wrap the cell, a few frames before the
    engulfment is complete. Where a host mask, an unlabelled ring or a
    merger encloses the cell for a sustained run, that route dates the
    internalisation: the track's core rows from that onset on are dropped,
    and so are those that lead into it (each at most ``lead_gap`` frames
    without enclosure before the next) when they start at most ``max_lead``
    frames before it (the wrapping). A longer lead-in is an enclosure the
    other routes saw late (the ring merged into the inner cell's mask for a
    while): it stays and dates the internalisation. Core rows of an earlier,
    separate run stay, and so do those of tracks that the other routes see
    enclosed only in scattered frames (the frames together make the run).

    Parameters
    ----------
    enclosures : pandas.DataFrame
        Per-frame enclosures (``frame, inner_track_id, host_track_id,
        signal_fraction, ...``). Not modified.
    min_frames, lead_gap, max_break : int
        As :func:`enclosure_onset`.
    max_lead : int
        Longest lead-in of core frames dropped (frames).

    Returns
    -------
    pandas.DataFrame
        The rows kept (index reset).
    """
    core = _core_rows(enclosures)
    if not core.any():
        return enclosures
    onset = enclosure_onset(enclosures[~core], min_frames, max_break, lead_gap).set_index(
        "inner_track_id")["internalization_frame"]
    drop = np.zeros(len(enclosures), bool)
    frames = enclosures["frame"].to_numpy(np.int64)
    inner = enclosures["inner_track_id"].to_numpy(np.int64)
    for tid, start in onset.items():
        mine = core.to_numpy() & (inner == int(tid))
        if not mine.any():
            continue
        cut = int(start)
        for f in sorted(set(frames[mine & (frames < start)].tolist()), reverse=True):
            if cut - f - 1 > lead_gap:
                break
            cut = f
        drop |= mine & (frames >= (cut if int(start) - cut <= max_lead else int(start)))
    return enclosures[~drop].reset_index(drop=True)


def core_only_tracks(enclosures: pd.DataFrame, min_frames: int, max_break: int = 1
                     ) -> set[int]:
    """Inner tracks whose enclosure rests on the bright-core route.

    A cell that no host mask, unlabelled ring or merger encloses for a
    sustained run, whose own mask holds a bright core inside a dim rim
    (:func:`livescreen.events.measure.frame_core_enclosures`: host ring and
    inner cell segmented as one object). Such an enclosure counts as
    cell-in-cell without a contact too (a spontaneous one): the host is not
    segmented (``host_track_id`` 0), but the object itself shows the cell
    inside the ring. An unlabelled bright ring alone does not (a cell packed
    among bright neighbours).

    Parameters
    ----------
    enclosures : pandas.DataFrame
        Per-frame enclosures after :func:`drop_core_rows_of_enclosed`.
    min_frames, max_break : int
        As :func:`enclosure_onset`: a run of the other routes this long is
        sustained.

    Returns
    -------
    set of int
    """
    core = _core_rows(enclosures)
    other = enclosure_onset(enclosures[~core], min_frames, max_break)
    return (set(enclosures.loc[core, "inner_track_id"].astype(int))
            - set(other["inner_track_id"].astype(int)))


#: Fewest deaths with a seen plateau at a site for their median peak to be the
#: site's dead-cell level (:func:`clear_dim_deaths`).
MIN_DEATHS_FOR_LEVEL = 3


def clear_dim_deaths(states: pd.DataFrame, min_share: float) -> pd.DataFrame:
    """Clear reporter deaths that stay far below the site's dead-cell level.

    A dead cell's DNA dye reaches about the same level in every dead cell of
    a site. A mask that takes in part of a dead neighbour's or a fragment's
    dye rises above the noise but stays well below that level. A death whose
    plateau was seen (the track goes on past its death frame) is cleared when
    its peak is below ``min_share`` of the median peak of such deaths at the
    site; with fewer than ``MIN_DEATHS_FOR_LEVEL`` of them nothing is cleared.
    Deaths at a track's last frame may still be rising and are not judged.

    Parameters
    ----------
    states : pandas.DataFrame
        :func:`target_states` rows (``death_onset_frame, death_frame,
        last_frame, death_peak``). Not modified.
    min_share : float
        Least share of the site's median peak (``death.min_peak_share``).

    Returns
    -------
    pandas.DataFrame
        A copy with ``death_onset_frame`` and ``death_frame`` of such tracks
        set to -1.

    Examples
    --------
    >>> s = pd.DataFrame({"death_onset_frame": [3, 5, 8, 9], "death_frame": [5, 7, 10, 11],
    ...                   "last_frame": [20, 20, 20, 20], "death_peak": [140., 150., 45., 135.]})
    >>> clear_dim_deaths(s, 0.5)["death_frame"].tolist()
    [5, 7, -1, 11]
    """
    seen = ((states["death_onset_frame"] >= 0) & (states["death_frame"] < states["last_frame"])
            & states["death_peak"].notna())
    out = states.copy()
    if seen.sum() < MIN_DEATHS_FOR_LEVEL:
        return out
    level = float(states.loc[seen, "death_peak"].median())
    dim = seen & (states["death_peak"] < min_share * level)
    for tid in states.index[dim]:
        log.info("track %s: death reporter peak %.0f below %.2f x the site's dead-cell level "
                 "%.0f: a mask taking in part of another cell's dye, not a death", tid,
                 float(states.at[tid, "death_peak"]), min_share, level)
    out.loc[dim, ["death_onset_frame", "death_frame"]] = NO_FRAME
    return out


def clear_host_deaths_of_inner(states: pd.DataFrame, max_share: float) -> pd.DataFrame:
    """Clear a host's reporter death that is its dead inner cell's.

    A cell that dies inside its host keeps its death reporter (a DNA dye)
    inside the host's outline; when the inner cell's own outline is lost
    (it fades, or Cellpose segments host and inner cell as one object), or
    the host's mask takes in the inner cell's blurred edge, the host's mean
    rises as if the host died, but only to a fraction of a dead cell's
    level. A host's death is cleared when one of its inner cells, enclosed
    no later than its onset, began to die no later than it, and the host's
    reporter peak is below ``max_share`` of that inner cell's (on
    the own masks of held-out plates P4, P5, P9: 0.20-0.36 for such hosts,
    which the truth has alive; 1.3 for a host killed while its inner cell
    died too).

    Parameters
    ----------
    states : pandas.DataFrame
        :func:`target_states` rows (indexed by ``target_track_id``). Not
        modified.
    max_share : float
        Largest host peak, as a share of the inner cell's, read as the
        inner cell's reporter (``death.host_reporter_max``).

    Returns
    -------
    pandas.DataFrame
        A copy with ``death_onset_frame`` and ``death_frame`` of such hosts
        set to -1.
    """
    out = states.copy()
    inner = states[(states["host_track_id"] > 0) & (states["death_onset_frame"] >= 0)]
    for tid, r in inner.iterrows():
        host = int(r["host_track_id"])
        if host not in out.index:
            continue
        onset = int(out.at[host, "death_onset_frame"])
        peak = float(out.at[host, "death_peak"])
        if onset < 0 or not (int(r["internalization_frame"]) <= onset
                             and int(r["death_onset_frame"]) <= onset
                             and peak < max_share * float(r["death_peak"])):
            continue
        out.loc[host, ["death_onset_frame", "death_frame"]] = NO_FRAME
        log.info("host track %d: death reporter from frame %d (peak %.0f) read as its inner "
                 "cell's (track %d, dying from frame %d, peak %.0f): not a death",
                 host, onset, peak, int(tid), int(r["death_onset_frame"]),
                 float(r["death_peak"]))
    return out


def target_states(targets: pd.DataFrame, background: pd.DataFrame, enclosures: pd.DataFrame,
                  channels: Mapping[str, int | None], n_frames: int, shape: tuple[int, int],
                  grid: ScoringGrid) -> pd.DataFrame:
    """Per target track: span, end, death, enclosure, division.

    Parameters
    ----------
    targets : pandas.DataFrame
        Target tracks table.
    background : pandas.DataFrame
        Per-frame background (:func:`livescreen.events.measure.measure_site`).
    enclosures : pandas.DataFrame
        Per-frame enclosures.
    channels : mapping
        ``imaging.channels`` (role -> index or None).
    n_frames : int
    shape : (int, int)
        Frame size (Y, X) in pixels.
    grid : ScoringGrid

    Returns
    -------
    pandas.DataFrame
        Indexed by ``target_track_id``: ``first_frame, last_frame, divided,
        in_field_end, death_onset_frame, death_frame, host_track_id,
        internalization_frame, core_only`` (:func:`core_only_tracks`),
        ``death_peak`` (largest background-subtracted reporter; NaN without
        one), ``death_method``. A host's reporter death that is its dead
        inner cell's is cleared (:func:`clear_host_deaths_of_inner`), and so
        is one far below the site's dead-cell level (:func:`clear_dim_deaths`).
    """
    death_ch = channels.get("death") if channels else None
    dcol = _intensity_column(targets, "death")
    use_reporter = (death_ch is not None and dcol is not None
                    and not background[background["channel"] == death_ch].empty
                    and targets[dcol].notna().any())
    if death_ch is not None and not use_reporter:
        log.warning("death channel declared (index %s) but no reporter measurements are "
                    "available: death from morphology and track termination", death_ch)
    bg = _background_lookup(background, death_ch, n_frames, "background")
    noise = _background_lookup(background, death_ch, n_frames, "noise")
    parents = dividing_tracks(targets)
    enclosures = drop_core_rows_of_enclosed(enclosures, grid.cic_min_frames, grid.cic_lead_gap,
                                            grid.cic_core_lead_max)
    encl = enclosure_onset(enclosures, grid.cic_min_frames, 1,
                           grid.cic_lead_gap).set_index("inner_track_id")
    core_only = core_only_tracks(enclosures, grid.cic_min_frames)
    h, w = shape
    rows = []
    for tid, tr in targets.groupby("track_id", sort=True):
        tr = tr.sort_values("frame")
        frames = tr["frame"].to_numpy(np.int64)
        last = tr.iloc[-1]
        near_border = bool(last["touches_border"]) or min(
            last["y_px"], last["x_px"], h - 1 - last["y_px"], w - 1 - last["x_px"]
        ) < grid.border_px
        divided = int(tid) in parents
        ends_in_field = (not near_border and not divided
                         and frames[-1] < n_frames - 1 - grid.end_margin_frames)
        peak = np.nan
        if use_reporter:
            sig = tr[dcol].to_numpy(float) - bg[frames]
            onset, dframe = death_from_reporter(frames, sig, sig / noise[frames], grid)
            peak = float(np.nanmax(sig)) if np.isfinite(sig).any() else np.nan
        else:
            onset, dframe = death_from_morphology(frames, tr["area_um2"].to_numpy(float),
                                                  ends_in_field, grid)
        host, internal = 0, NO_FRAME
        if int(tid) in encl.index:
            host = int(encl.at[int(tid), "host_track_id"])
            internal = int(encl.at[int(tid), "internalization_frame"])
        rows.append((int(tid), int(frames[0]), int(frames[-1]), divided, near_border,
                     onset, dframe, host, internal, int(tid) in core_only, peak))
    cols = ["target_track_id", "first_frame", "last_frame", "divided", "near_border_end",
            "death_onset_frame", "death_frame", "host_track_id", "internalization_frame",
            "core_only", "death_peak"]
    flags = ("divided", "near_border_end", "core_only")
    out = pd.DataFrame(rows, columns=cols) if rows else pd.DataFrame(
        {c: pd.Series(dtype=bool if c in flags else float if c == "death_peak" else np.int64)
         for c in cols})
    out["death_method"] = "reporter" if use_reporter else "morphology"
    out = out.set_index("target_track_id")
    if use_reporter and grid.host_reporter_max is not None:
        out = clear_host_deaths_of_inner(out, grid.host_reporter_max)
    if use_reporter and grid.min_peak_share is not None:
        out = clear_dim_deaths(out, grid.min_peak_share)
    return out


# ------------------------------------------------------------------ nibbling measures


def _median_in(frames: np.ndarray, values: np.ndarray, lo: int, hi: int,
               exclude: set[int] | None = None) -> float:
    sel = (frames >= lo) & (frames <= hi)
    if exclude:
        sel &= ~np.isin(frames, list(exclude))
    v = values[sel]
    v = v[np.isfinite(v)]
    return float(np.median(v)) if v.size else np.nan


def retreat_from(at_end: np.ndarray, later: np.ndarray, effector: np.ndarray | None) -> float:
    """How far a target moved away from its effector after a contact.

    Parameters
    ----------
    at_end : (2,) array
        Target centroid ``(y, x)`` at the contact's end.
    later : (n, 2) array
        Target centroids in the frames after it (n >= 1).
    effector : (2,) array or None
        Effector centroid at the contact's end. None (not seen): the
        largest distance from ``at_end`` in any direction.

    Returns
    -------
    float
        The largest displacement along the direction from the effector to
        the target at the contact's end (negative: towards the effector).
        An escaping cell moves away from its attacker; a cell that only
        crawls about moves as much towards it as away from it.

    Examples
    --------
    >>> retreat_from(np.array([0.0, 0.0]), np.array([[0.0, 3.0], [0.0, 6.0]]),
    ...              np.array([0.0, -5.0]))
    6.0
    >>> retreat_from(np.array([0.0, 0.0]), np.array([[4.0, 0.0]]), np.array([0.0, -5.0]))
    0.0
    """
    at_end = np.asarray(at_end, dtype=float)
    d = np.asarray(later, dtype=float).reshape(-1, 2) - at_end
    if d.shape[0] == 0:
        raise ValueError("retreat_from needs at least one later position")
    u = None if effector is None else at_end - np.asarray(effector, dtype=float)
    if u is None or not np.hypot(*u) > 0:
        return float(np.max(np.hypot(d[:, 0], d[:, 1])))
    return float(np.max(d @ (u / np.hypot(*u))))


def _carried_in(pre: float, pre_first: float, post: float, first: float,
                fraction: float) -> float:
    """The baseline of a nibbling gain, less label that came with the effector.

    A nibble builds up over the contact, so at the contact's first frame an
    effector shows little of what it carries at the end. When the level at
    that frame (``first``) already rose above the level before the contact
    (``pre_first``: projected to that frame) by at least ``fraction`` of the
    rise read after it (``post`` over ``pre``: projected to the "after"
    frames), the label was there when the contact began:
    carried in from another cell, or the tracker handed a loaded effector's
    id to this one as the two crossed. That jump is added to the baseline.

    Parameters
    ----------
    pre, pre_first : float
        Effector target-channel level before the contact, projected (carried
        label fading) to the "after" frames and to the contact's first frame
        (NaN: the effector was not seen before the contact; nothing is then
        checked).
    post, first : float
        Levels after the contact and at its first frame (NaN: not seen).
    fraction : float
        Share of the rise present at the first frame that marks carried label.

    Returns
    -------
    float
        The baseline to subtract from ``post``.

    Examples
    --------
    >>> _carried_in(2.0, 2.0, 40.0, 50.0, 0.8)     # loaded when the contact began
    50.0
    >>> _carried_in(2.0, 2.0, 40.0, 9.0, 0.8)      # a nibble building up
    2.0
    >>> _carried_in(30.0, 40.0, 45.0, 42.0, 0.8)   # fading old label, new nibble
    30.0
    """
    if np.isfinite(pre) and np.isfinite(pre_first) and np.isfinite(post) \
            and np.isfinite(first) and post > pre \
            and first - pre_first >= fraction * (post - pre):
        return pre + (first - pre_first)
    return pre


def nibbling_measures(episodes: pd.DataFrame, targets: pd.DataFrame, effectors: pd.DataFrame,
                      contacts: pd.DataFrame, background: pd.DataFrame,
                      channels: Mapping[str, int | None], n_frames: int,
                      grid: ScoringGrid, signals: pd.DataFrame | None = None,
                      effector_xy: Mapping[tuple[int, int], np.ndarray] | None = None
                      ) -> pd.DataFrame:
    """Target-channel signal gained by the effector and area lost by the target.

    ``effector_target_signal_gain``: the effector's background-subtracted
    target-channel mean (minus the median over effectors free of contact in
    the same frame), divided by the target's own target-channel brightness:
    the median after the contact minus the median over the ``trog_window``
    before it (0 when not seen before); frames in contact with other targets
    are left out. With ``signals``
    (:func:`livescreen.events.measure.frame_effector_signal`: only effector
    pixels away from every target) "after" is the contact's last two frames,
    when the gained label is strongest, to ``trog_signal_after`` frames after
    its end; without (the tracks' whole-mask means, which in contact include
    the target's own light) it is the ``trog_window`` after the contact.
    With ``grid.trog_carried_half_life`` (frames) a positive "before" level,
    label still carried from earlier nibbles, is first decayed from the
    middle of the "before" window to the middle of the "after" one: it fades
    meanwhile and would hide a new nibble.
    ``target_area_loss_fraction``: 1 - (median area in the window after the
    episode) / (median area in the window before and at its start), over
    frames where the target does not touch the image border.
    ``retreat_px``: :func:`retreat_from` over the ``survive_frames`` after the
    contact, away from the effector at the contact's end (its last id, last
    seen in the contact; ``effector_xy``: :func:`effector_positions` of
    ``effectors``, computed when not given).

    Returns
    -------
    pandas.DataFrame
        The three columns, aligned with ``episodes`` (NaN where not measurable).
    """
    n = len(episodes)
    gain = np.full(n, np.nan)
    loss = np.full(n, np.nan)
    retreat = np.full(n, np.nan)
    if n == 0:
        return pd.DataFrame({"effector_target_signal_gain": gain,
                             "target_area_loss_fraction": loss, "retreat_px": retreat})
    tcol = _intensity_column(effectors, "target")
    bg = _background_lookup(background, channels.get("target") if channels else None,
                            n_frames, "background")
    busy = set(zip(contacts["effector_track_id"].astype(int), contacts["frame"].astype(int),
                   strict=True))
    busy_frames: dict[int, set[int]] = {}
    for k, f in busy:
        busy_frames.setdefault(k, set()).add(f)
    eff_sig = pd.Series(dtype=float)
    away = signals is not None and len(signals) > 0
    if away:
        e = signals.rename(columns={"effector_track_id": "track_id"})[["track_id", "frame"]].copy()
        e["sig"] = (signals["target_signal"].to_numpy(float)
                    - bg[signals["frame"].to_numpy(np.int64)])
    elif tcol is not None and len(effectors):
        e = effectors[["track_id", "frame", tcol]].copy()
        e["sig"] = e[tcol].to_numpy(float) - bg[e["frame"].to_numpy(np.int64)]
    if away or (tcol is not None and len(effectors)):
        free = ~pd.Series([(int(a), int(b)) in busy for a, b in
                           zip(e["track_id"], e["frame"], strict=False)], index=e.index)
        pop = e[free].groupby("frame")["sig"].median()
        e["adj"] = e["sig"] - e["frame"].map(pop).fillna(0.0)
        eff_sig = e
    t_by = {int(k): g.sort_values("frame") for k, g in targets.groupby("track_id")}
    if effector_xy is None:
        effector_xy = effector_positions(effectors)
    e_by = ({int(k): g.sort_values("frame") for k, g in eff_sig.groupby("track_id")}
            if len(eff_sig) else {})
    W = grid.trog_window
    for i, ep in enumerate(episodes.itertuples(index=False)):
        s, e_ = int(ep.start_frame), int(ep.end_frame)
        tr = t_by.get(int(ep.target_track_id))
        if tr is not None:
            tf = tr["frame"].to_numpy(np.int64)
            area = tr["area_um2"].to_numpy(float)
            # frames cut by the image border do not count: a target that
            # moves out of the field (as evading cells do) only seems to shrink
            inside = ~tr["touches_border"].to_numpy(bool)
            pre = _median_in(tf[inside], area[inside], s - W, s)
            post = _median_in(tf[inside], area[inside], e_ + 1, e_ + W)
            if np.isfinite(pre) and pre > 0 and np.isfinite(post):
                loss[i] = 1.0 - post / pre
            at_end = np.nonzero(tf <= e_)[0]
            later = np.nonzero((tf > e_) & (tf <= e_ + grid.survive_frames))[0]
            if at_end.size and later.size:
                yx = tr[["y_px", "x_px"]].to_numpy(float)
                k0 = at_end[-1]
                eid = int(ep.last_effector_track_id)
                seen = next((effector_xy[(eid, f)] for f in range(e_, s - 1, -1)
                             if (eid, f) in effector_xy), None)
                retreat[i] = retreat_from(yx[k0], yx[later], seen)
        # the gained label is read on the effector as it is at the contact's end
        # (the tracker may have changed its id during the contact: Definition 2)
        first_id, last_id = int(ep.effector_track_id), int(ep.last_effector_track_id)
        er = e_by.get(last_id)
        er0 = e_by.get(first_id)
        if er is not None and tr is not None and tcol is not None:
            ef = er["frame"].to_numpy(np.int64)
            ebusy = busy_frames.get(last_id, set())
            if away:  # this contact's own last frames count; contacts with others do not
                lo, hi = max(s, e_ - 1), e_ + grid.trog_signal_after
                skip = ebusy - set(range(s, e_ + 1))
            else:
                lo, hi, skip = e_ + 1, e_ + W, ebusy
            post = _median_in(ef, er["adj"].to_numpy(float), lo, hi, skip)
            pre = np.nan
            if er0 is not None:
                f0, a0 = er0["frame"].to_numpy(np.int64), er0["adj"].to_numpy(float)
                pre = pre_first = _median_in(f0, a0, s - W, s - 1,
                                             busy_frames.get(first_id, set()))
                hl = grid.trog_carried_half_life
                if hl is not None and pre > 0:
                    # label carried from earlier nibbles fades: the level it would
                    # have where "after" is read (window middles) is the baseline
                    mid = s - 1 - (W - 1) / 2
                    pre *= 0.5 ** (max(0.0, (lo + hi) / 2 - mid) / hl)
                    pre_first *= 0.5 ** ((s - mid) / hl)
                if grid.trog_carried_in_fraction is not None \
                        and e_ - s + 1 >= grid.trog_carried_in_min_frames:
                    pre = _carried_in(pre, pre_first, post, _median_in(f0, a0, s, s),
                                      grid.trog_carried_in_fraction)
            tsig = tr[tcol].to_numpy(float) - bg[tf] if tcol in tr else np.full(len(tf), np.nan)
            bright = _median_in(tf, tsig, s - W, e_)
            if np.isfinite(post) and np.isfinite(bright) and bright > 0:
                gain[i] = (post - (pre if np.isfinite(pre) else 0.0)) / bright
    return pd.DataFrame({"effector_target_signal_gain": gain, "target_area_loss_fraction": loss,
                         "retreat_px": retreat})


# ------------------------------------------------------------------ outcomes


def _fate_in_next_encounter(st, starts: np.ndarray, ends: np.ndarray, decided: np.ndarray,
                            k: int, survive_frames: int) -> bool:
    """Whether a target's death or enclosure, given to a later encounter, came soon after ``k``.

    Parameters
    ----------
    st : mapping or None
        The target's :func:`target_states` row.
    starts, ends : numpy.ndarray
        Start and end frames of the target's encounters.
    decided : numpy.ndarray of bool
        Which of them took the target's death or enclosure.
    k : int
        The encounter asked about.
    survive_frames : int
        Frames a target must be followed after a contact to have got away.

    Returns
    -------
    bool
        True when an encounter that started after ``k``'s start took the
        target's fate (``decided``) and the target's death onset or
        internalisation came no later than ``survive_frames`` after ``k``'s
        end: the target did not get away from encounter ``k``.
    """
    if st is None or not np.any(decided & (starts > starts[k])):
        return False
    fates = [int(st[c]) for c in ("death_onset_frame", "internalization_frame")]
    return any(0 <= f <= ends[k] + survive_frames for f in fates)


def _taken_over(starts: np.ndarray, ends: np.ndarray, decided: np.ndarray, k: int,
                max_break: int) -> bool:
    """Whether another contact with a target carried on where encounter ``k`` ended.

    Parameters
    ----------
    starts, ends : numpy.ndarray
        Start and end frames of the target's encounters.
    decided : numpy.ndarray of bool
        Which of them took the target's death or enclosure.
    k : int
        The encounter asked about.
    max_break : int
        Longest break bridged within one contact (``contact_max_break``).

    Returns
    -------
    bool
        True when an encounter that started after ``k``'s start began at most
        ``max_break`` + 1 frames after ``k``'s end and went on past it or took
        the target's death or enclosure (``decided``): the target was never
        free after ``k``, so ``k`` cannot be resolved alive; the later
        encounter carries the resolution (a second effector took over, or the
        tracker gave the attacker a new id that :func:`join_effector_switches`
        did not join).
    """
    later = (starts > starts[k]) & (starts <= ends[k] + max_break + 1)
    return bool(np.any(later & ((ends > ends[k]) | decided)))


def encounter_outcomes(episodes: pd.DataFrame, states: pd.DataFrame, nibbling: pd.DataFrame,
                       n_frames: int, grid: ScoringGrid) -> pd.DataFrame:
    """Outcome, censoring, trogocytosis flag and host of every episode.

    Rules (in order; docs/events.md): *kill* when the target's death onset
    falls between the episode's start and ``kill_window`` frames after its
    end (the latest such episode of the target gets it); *cell_in_cell* when
    its sustained enclosure starts in the same kind of window
    (``cic_window``), tested first when the enclosure began no later than
    the death (an inner cell dying inside its host was not killed);
    *censored* (``movie_end``) when the contact is still going on at the
    last frame, or when the target is not followed
    ``survive_frames`` past the end (``movie_end`` if the movie ended,
    ``left_field`` if its track ended); *censored* (``next_encounter``) when
    another contact carried on where this one ended (:func:`_taken_over`) or
    a later encounter took the target's death or enclosure soon after it
    (:func:`_fate_in_next_encounter`); otherwise resolved alive:
    *trogocytosis_only* when nibbled, else *evasion*. Nibbled = signal gain
    >= ``trog_signal_gain`` or (target alive and not enclosed) area loss >=
    ``trog_area_loss``. A nibbled target that retreats >= ``retreat_px`` from
    its position at the contact's end, away from the effector
    (:func:`retreat_from`), within ``survive_frames`` evaded (with nibbling).

    Returns
    -------
    pandas.DataFrame
        ``episodes`` with ``outcome, censor_reason, trogocytosis, host_track_id``
        added (a new frame; inputs unchanged).
    """
    out = pd.concat([episodes.reset_index(drop=True), nibbling.reset_index(drop=True)], axis=1)
    n = len(out)
    outcome = np.array(["evasion"] * n, dtype=object)
    reason = np.array(["none"] * n, dtype=object)
    host = np.zeros(n, np.int64)
    last_frame = n_frames - 1
    gain = out["effector_target_signal_gain"].to_numpy(float) if n else np.array([])
    loss = out["target_area_loss_fraction"].to_numpy(float) if n else np.array([])
    gained = np.nan_to_num(gain, nan=-np.inf) >= grid.trog_signal_gain
    lost = np.nan_to_num(loss, nan=-np.inf) >= grid.trog_area_loss
    trog = gained.copy()
    for tid, idx in out.groupby("target_track_id").groups.items():
        idx = np.sort(np.asarray(idx))
        st = states.loc[int(tid)] if int(tid) in states.index else None
        starts = out.loc[idx, "start_frame"].to_numpy(np.int64)
        ends = out.loc[idx, "end_frame"].to_numpy(np.int64)
        decided = np.zeros(len(idx), bool)
        if st is not None:
            kinds = [("kill", "death_onset_frame", grid.kill_window),
                     ("cell_in_cell", "internalization_frame", grid.cic_window)]
            if 0 <= int(st["internalization_frame"]) <= int(st["death_onset_frame"]):
                kinds.reverse()   # enclosed first: an inner cell dying in its host
            for kind, frame_col, window in kinds:
                f = int(st[frame_col])
                if f < 0:
                    continue
                cand = np.nonzero((starts <= f) & (f <= ends + window) & ~decided)[0]
                if cand.size:
                    k = cand[np.argmax(starts[cand])]
                    outcome[idx[k]] = kind
                    decided[k] = True
                    if kind == "cell_in_cell":
                        host[idx[k]] = int(st["host_track_id"])
                    break
        for k in np.nonzero(~decided)[0]:
            j = idx[k]
            last_seen = int(st["last_frame"]) if st is not None else ends[k]
            alive_after = st is not None and bool(st["divided"])
            if ends[k] >= last_frame:
                outcome[j], reason[j] = "censored", "movie_end"
            elif not alive_after and last_seen - ends[k] < grid.survive_frames:
                outcome[j] = "censored"
                reason[j] = "movie_end" if last_seen >= last_frame else "left_field"
            else:
                if _taken_over(starts, ends, decided, k, grid.contact_max_break) \
                        or _fate_in_next_encounter(st, starts, ends, decided, k,
                                                   grid.survive_frames):
                    outcome[j], reason[j] = "censored", "next_encounter"
                    continue
                dead = st is not None and int(st["death_onset_frame"]) >= 0 \
                    and int(st["death_onset_frame"]) <= ends[k] + grid.survive_frames
                enclosed = st is not None and int(st["internalization_frame"]) >= 0
                if lost[j] and not dead and not enclosed:
                    trog[j] = True
                retreated = np.nan_to_num(out.at[j, "retreat_px"], nan=0.0) >= grid.retreat_px
                outcome[j] = "trogocytosis_only" if trog[j] and not retreated else "evasion"
    out["outcome"] = outcome
    out["censor_reason"] = reason
    out["trogocytosis"] = trog.astype(bool)
    out["host_track_id"] = host
    return out


# ------------------------------------------------------------------ tables


_FATE_OF = {"kill": "killed", "cell_in_cell": "cell_in_cell", "evasion": "evaded",
            "trogocytosis_only": "nibbled", "censored": "censored"}


def dead_at_first_sight(state: Mapping) -> bool:
    """Whether a target track was already dead in its first frame.

    Its death frame (the reporter's plateau, or the morphology frame) is its
    first frame: the death happened before the track began and was not seen.
    Such a track is debris of a cell that died earlier (a dead cell that
    fragments leaves pieces that are tracked on their own) or a dead cell
    drifting into the field; counting its "death" would count a death twice
    or one outside the movie. On the 15 demo sites' own masks, 6 of the 7
    false "died" events were such tracks and no true one was
    (docs/events.md).

    Parameters
    ----------
    state : mapping
        One row of :func:`target_states` (``first_frame``, ``death_frame``).

    Returns
    -------
    bool
    """
    death = int(state["death_frame"])
    return death >= 0 and death <= int(state["first_frame"])


def fates_table(states: pd.DataFrame, encounters: pd.DataFrame, n_frames: int,
                dt: float, site: Mapping[str, str]) -> pd.DataFrame:
    """One row per target track (columns: docs/events.md, :class:`FatesTable`)."""
    if states.empty:
        return empty_like(FatesTable)
    rows = []
    by_t = {int(k): g.sort_values("start_frame") for k, g in encounters.groupby("target_track_id")}
    for tid, st in states.iterrows():
        enc = by_t.get(int(tid))
        n_enc = 0 if enc is None else len(enc)
        first = int(enc["start_frame"].iloc[0]) if n_enc else NO_FRAME
        dead = int(st["death_frame"]) >= 0
        host = int(st["host_track_id"])
        internal = int(st["internalization_frame"])
        eff = 0
        reason = "none"
        if n_enc:
            oc = enc["outcome"].tolist()
            if "kill" in oc or "cell_in_cell" in oc:
                k = next(i for i, o in enumerate(oc) if o in ("kill", "cell_in_cell"))
            elif any(o in ("evasion", "trogocytosis_only") for o in oc):
                k = max(i for i, o in enumerate(oc) if o in ("evasion", "trogocytosis_only"))
            else:
                k = n_enc - 1
            dec = enc.iloc[k]
            outcome = _FATE_OF[dec["outcome"]]
            if outcome == "evaded" and enc["trogocytosis"].any() and \
                    "trogocytosis_only" in oc:
                outcome = "nibbled"
            reason = str(dec["censor_reason"])
            eff = int(dec["effector_track_id"])
            if outcome != "cell_in_cell":
                host, internal = 0, NO_FRAME
        elif host > 0 or (internal >= 0 and bool(st.get("core_only", False))):
            outcome = "cell_in_cell"
        elif int(st.get("piece_of", 0)) > 0:
            outcome = "inner_piece"
        elif dead:
            outcome = "dead_at_start" if dead_at_first_sight(st) else "died"
        else:
            outcome = "uncontacted"
        if outcome != "cell_in_cell":
            host, internal = 0, NO_FRAME
        ttd = (int(st["death_frame"]) - first) * dt if (
            dead and first >= 0 and outcome in ("killed", "cell_in_cell")) else np.nan
        inner = pd.NA if outcome != "cell_in_cell" else (not dead)
        if st["divided"]:
            end = "divided"
        elif int(st["last_frame"]) >= n_frames - 1:
            end = "movie_end"
        elif st["near_border_end"]:
            end = "left_field"
        elif dead:
            end = "faded"
        else:
            end = "hidden"
        rows.append({**site, "target_track_id": int(tid), "contacted": n_enc > 0,
                     "n_encounters": n_enc, "first_contact_frame": first,
                     "first_contact_min": first * dt if first >= 0 else np.nan,
                     "effector_track_id": eff, "outcome": outcome, "censor_reason": reason,
                     "death_frame": int(st["death_frame"]), "time_to_death_min": ttd,
                     "host_track_id": host, "internalization_frame": internal,
                     "inner_survives": inner, "divided": bool(st["divided"]),
                     "end_reason": end})
    out = pd.DataFrame(rows)
    out["inner_survives"] = out["inner_survives"].astype("boolean")
    return out


def effectors_table(effectors: pd.DataFrame, encounters: pd.DataFrame, dt: float,
                    site: Mapping[str, str]) -> pd.DataFrame:
    """One row per effector track: contacts, kills (serial killing), contact rate."""
    if effectors.empty:
        return empty_like(EffectorsTable)
    span = effectors.groupby("track_id")["frame"].agg(["min", "max"])
    observed = (span["max"] - span["min"] + 1) * dt
    n_c = encounters.groupby("effector_track_id").size()
    n_k = encounters[encounters["outcome"] == "kill"].groupby("effector_track_id").size()
    ids = span.index.astype(int)
    out = pd.DataFrame({**{k: v for k, v in site.items()}, "effector_track_id": ids,
                        "n_contacts": n_c.reindex(ids, fill_value=0).to_numpy(np.int64),
                        "n_kills": n_k.reindex(ids, fill_value=0).to_numpy(np.int64),
                        "observed_min": observed.to_numpy(float)})
    out["contacts_per_hour"] = out["n_contacts"] / (out["observed_min"] / 60.0)
    return out


def encounters_table(scored: pd.DataFrame, dt: float, px: float,
                     site: Mapping[str, str]) -> pd.DataFrame:
    """Final encounters table (:class:`EncountersTable`) from scored episodes."""
    if scored.empty:
        return empty_like(EncountersTable)
    out = pd.DataFrame({
        **{k: [v] * len(scored) for k, v in site.items()},
        "encounter_id": np.arange(1, len(scored) + 1, dtype=np.int64),
        "target_track_id": scored["target_track_id"].astype(np.int64).to_numpy(),
        "effector_track_id": scored["effector_track_id"].astype(np.int64).to_numpy(),
        "start_frame": scored["start_frame"].astype(np.int64).to_numpy(),
        "end_frame": scored["end_frame"].astype(np.int64).to_numpy(),
    })
    out["start_min"] = out["start_frame"] * dt
    out["end_min"] = out["end_frame"] * dt
    out["duration_min"] = (out["end_frame"] - out["start_frame"] + 1) * dt
    out["contact_area_um2"] = scored["contact_px"].to_numpy(float) * px * px
    for c in ("outcome", "censor_reason", "trogocytosis", "effector_target_signal_gain",
              "target_area_loss_fraction", "host_track_id"):
        out[c] = scored[c].to_numpy()
    return out


def score_site(target_tracks: pd.DataFrame, effector_tracks: pd.DataFrame,
               measurements: Mapping[str, pd.DataFrame], *, n_frames: int,
               shape: tuple[int, int], imaging: Mapping[str, Any], grid: ScoringGrid,
               plate: str, well: str, field: str) -> dict[str, pd.DataFrame]:
    """Score one site: encounters, fates and effectors tables.

    Parameters
    ----------
    target_tracks, effector_tracks : pandas.DataFrame
        Tracks tables of the track stage (may be empty). Not modified.
    measurements : mapping
        Output of :func:`livescreen.events.measure.measure_site`.
    n_frames : int
        Frames in the movie.
    shape : (int, int)
        Frame size (Y, X) in pixels.
    imaging : mapping
        ``config["imaging"]`` (``channels`` used).
    grid : ScoringGrid
        Thresholds in pixels and frames (:func:`livescreen.events.params.to_pixels_frames`).
    plate, well, field : str

    Returns
    -------
    dict
        ``encounters``, ``fates``, ``effectors`` (validated) and ``states``
        (per-target diagnostics, not written).
    """
    site = {"plate": str(plate), "well": str(well), "field": str(field)}
    channels = dict(imaging.get("channels") or {})
    contacts = measurements["contacts"]
    if effector_tracks.empty:
        log.info("no effectors at this site: no encounters")
    elif contacts.empty:
        log.info("no effector-target contacts at this site")
    effector_xy = effector_positions(effector_tracks)
    episodes = contact_episodes(contacts, grid.contact_min_frames, grid.contact_max_break,
                                n_frames - 1, effector_xy, grid.contact_same_effector_px)
    states = target_states(target_tracks, measurements["background"],
                           measurements["enclosures"], channels, n_frames, shape, grid)
    mergers = measurements.get("mergers")
    births = measurements.get("births")
    if mergers is not None and len(mergers):
        extra = merger_enclosures(
            mergers, states, episodes, grid, births=births,
            enclosed=set(measurements["enclosures"]["inner_track_id"].astype(int)),
            hosts=set(measurements["enclosures"]["host_track_id"].astype(int)) - {0})
        if len(extra):
            encl = measurements["enclosures"]
            encl = pd.concat([encl, extra], ignore_index=True) if len(encl) else extra
            states = target_states(target_tracks, measurements["background"], encl,
                                   channels, n_frames, shape, grid)
    states = drop_host_remnants(states, episodes, grid.cic_window)
    if births is not None and len(births):
        states = drop_inner_pieces(states, episodes, births)
    nib = nibbling_measures(episodes, target_tracks, effector_tracks, contacts,
                            measurements["background"], channels, n_frames, grid,
                            signals=measurements.get("effector_signal"), effector_xy=effector_xy)
    scored = encounter_outcomes(episodes, states, nib, n_frames, grid)
    enc = EncountersTable.validate(encounters_table(scored, grid.dt, grid.px, site))
    fates = FatesTable.validate(fates_table(states, enc, n_frames, grid.dt, site))
    eff = EffectorsTable.validate(effectors_table(effector_tracks, enc, grid.dt, site))
    log.info("%d encounters (%s); %d targets, %d effectors", len(enc),
             dict(enc["outcome"].value_counts()) if len(enc) else {}, len(fates), len(eff))
    return {"encounters": enc, "fates": fates, "effectors": eff, "states": states}
