"""Events stage: effector-target encounters, outcomes and target fates per site.

>>> from livescreen.events import event_params, score_labels          # doctest: +SKIP
>>> tables = score_labels(target_labels, effector_labels, movie, target_tracks,
...                       effector_tracks, imaging=config["imaging"],
...                       params=event_params(config.get("events")),
...                       plate="P1", well="B02", field="1")           # doctest: +SKIP

Modules: :mod:`.params` (config in um / min -> pixels / frames),
:mod:`.measure` (per-frame mask measurements), :mod:`.score` (episodes,
deaths, enclosures, outcomes, tables), :mod:`.schemas` (table contracts),
:mod:`.validate` (matching against simulator truth), :mod:`.gallery`
(montages). Definitions and columns: docs/events.md.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from livescreen.events.measure import (
    drop_objects,
    measure_site,
    repair_attacked_swaps,
    repair_enclosure_swaps,
    stitch_engulfments,
    targets_under_effectors,
    track_births,
    track_mergers,
)
from livescreen.events.params import EventParams, event_params, to_pixels_frames
from livescreen.events.schemas import EffectorsTable, EncountersTable, FatesTable
from livescreen.events.score import (
    drop_core_rows_of_enclosed,
    enclosure_onset,
    merger_pairs,
    score_site,
)

__all__ = ["EffectorsTable", "EncountersTable", "EventParams", "FatesTable", "event_params",
           "measure_site", "score_labels", "score_site", "to_pixels_frames", "write_events"]

log = logging.getLogger(__name__)


def _measure(target_labels, effector_labels, movie, grid, kw: Mapping[str, Any]
             ) -> dict[str, pd.DataFrame]:
    """:func:`measure_site`, without bright-core rows that another route's onset overrules."""
    meas = measure_site(target_labels, effector_labels, movie, **kw)
    meas["enclosures"] = drop_core_rows_of_enclosed(meas["enclosures"], grid.cic_min_frames,
                                                    grid.cic_lead_gap, grid.cic_core_lead_max)
    return meas


def score_labels(target_labels: np.ndarray, effector_labels: np.ndarray | None, movie,
                 target_tracks: pd.DataFrame, effector_tracks: pd.DataFrame, *,
                 imaging: Mapping[str, Any], params: EventParams, plate: str, well: str,
                 field: str) -> dict[str, pd.DataFrame]:
    """Measure and score one site from its track-id label stacks.

    Parameters
    ----------
    target_labels : (T, Y, X) int array
        ``track/target_track_labels.tif`` (pixel value = track id).
    effector_labels : (T, Y, X) int array or None
        Same for effectors; ``None`` = no effectors (all-zero stack used).
    movie : (T, C, Y, X) array, livescreen.imageio.Movie or None
        Raw movie (background levels); ``None`` = no reporter, raw intensities.
    target_tracks, effector_tracks : pandas.DataFrame
        Tracks tables of the two populations.
    imaging : mapping
        ``config["imaging"]``.
    params : EventParams
    plate, well, field : str

    Returns
    -------
    dict
        ``encounters``, ``fates``, ``effectors``, ``states``, ``measurements``, and
        ``target_labels`` / ``target_tracks`` without target objects lying under
        effector masks (:func:`~livescreen.events.measure.targets_under_effectors`)
        and after repairing inner/host identity swaps
        (:func:`~livescreen.events.measure.repair_enclosure_swaps`,
        :func:`~livescreen.events.measure.repair_attacked_swaps`).
    """
    target_labels = np.asarray(target_labels)
    if effector_labels is None:
        effector_labels = np.zeros_like(target_labels)
    grid = to_pixels_frames(params, imaging["pixel_size_um"], imaging["frame_interval_min"])
    under = targets_under_effectors(target_labels, effector_labels,
                                    params.contact.target_under_effector_max)
    if len(under):
        target_labels, target_tracks = drop_objects(target_labels, target_tracks, under)
        log.info("%d target object(s) in %d track(s) lie under effector masks (an "
                 "effector's picked-up target label, not a cell): left out", len(under),
                 under["track_id"].nunique())
    channels = dict(imaging.get("channels") or {})
    if movie is not None and channels.get("death") is not None \
            and int(channels["death"]) >= movie.shape[1]:
        log.warning("death channel %s declared but the movie has %d channels",
                    channels["death"], movie.shape[1])
    kw = dict(contact_gap_px=grid.contact_gap_px, cic_gap_px=grid.cic_gap_px,
              cic_boundary_fraction=grid.cic_boundary_fraction,
              cic_inside_fraction=grid.cic_inside_fraction,
              target_channel=None if channels.get("target") is None else int(channels["target"]),
              signal_away_px=grid.trog_signal_away_px,
              cic_signal=None if grid.cic_signal_fraction is None else dict(
                  ring_px=grid.cic_signal_ring_px, level=grid.cic_signal_level,
                  min_fraction=grid.cic_signal_fraction,
                  others_max=grid.cic_signal_others_max),
              cic_core=None if grid.cic_core_level is None else dict(
                  level=grid.cic_core_level, rim_min=grid.cic_core_rim_min,
                  rim_max=grid.cic_core_rim_max,
                  depth_px=grid.cic_core_depth_px, min_fraction=grid.cic_core_min_fraction))
    meas = _measure(target_labels, effector_labels, movie, grid, kw)
    pairs = enclosure_onset(meas["enclosures"], grid.cic_min_frames, 1)
    target_labels, target_tracks, n_swaps = repair_enclosure_swaps(
        target_labels, target_tracks, pairs, grid.cic_window)
    if n_swaps:
        meas = _measure(target_labels, effector_labels, movie, grid, kw)
        pairs = enclosure_onset(meas["enclosures"], grid.cic_min_frames, 1)
    if grid.cic_attack_swap_min_iou is not None:
        target_labels, target_tracks, n_swaps = repair_attacked_swaps(
            target_labels, target_tracks, pairs, meas["contacts"], grid.cic_window,
            grid.cic_attack_swap_min_iou)
        if n_swaps:
            meas = _measure(target_labels, effector_labels, movie, grid, kw)
            pairs = enclosure_onset(meas["enclosures"], grid.cic_min_frames, 1)
    merge = grid.cic_merge_cover is not None
    if merge:
        mergers = track_mergers(target_labels, target_tracks, grid.cic_merge_cover)
        pairs = pd.concat([pairs, merger_pairs(mergers, grid.cic_min_frames)],
                          ignore_index=True)
    target_labels, target_tracks, n_joined = stitch_engulfments(
        target_labels, target_tracks, pairs, grid.cic_window, grid.cic_travel_px,
        max_gap=grid.contact_max_break, brightness_change=grid.cic_travel_brightness_change,
        contacts=meas["contacts"])
    if n_joined:
        meas = _measure(target_labels, effector_labels, movie, grid, kw)
        if merge:       # ids changed: mergers of the joined tracks
            mergers = track_mergers(target_labels, target_tracks, grid.cic_merge_cover)
    if merge:
        meas["mergers"] = mergers
    meas["births"] = track_births(target_labels, target_tracks)
    out = score_site(target_tracks, effector_tracks, meas, n_frames=target_labels.shape[0],
                     shape=target_labels.shape[1:], imaging=imaging, grid=grid, plate=plate,
                     well=well, field=field)
    out["measurements"] = meas
    out["target_labels"] = target_labels
    out["target_tracks"] = target_tracks
    return out


def write_events(tables: Mapping[str, pd.DataFrame], paths: Mapping[str, Any],
                 provenance: Mapping[str, Any] | None = None) -> None:
    """Write ``encounters``, ``fates`` and ``effectors`` (checked, atomic, with provenance)."""
    from livescreen.tables import write_table

    models = {"encounters": EncountersTable, "fates": FatesTable, "effectors": EffectorsTable}
    for name, model in models.items():
        write_table(tables[name], paths[name], model, provenance)
