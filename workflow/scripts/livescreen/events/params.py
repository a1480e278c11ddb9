"""Event-scoring settings in micrometres and minutes, and their conversion to pixels/frames.

Every threshold of the events stage lives here (config section ``events:``,
documented in config/README.md and docs/events.md). :func:`event_params`
merges the config over the defaults and validates; :func:`to_pixels_frames`
converts with ``imaging.pixel_size_um`` and ``imaging.frame_interval_min``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ContactParams(_Section):
    """Contact detection: masks within ``gap_um`` for >= ``min_duration_min``."""

    gap_um: float = Field(1.0, ge=0)
    min_duration_min: float = Field(8.0, ge=0)
    max_break_min: float = Field(8.0, ge=0)
    same_effector_um: float | None = Field(3.0, ge=0)
    target_under_effector_max: float = Field(0.8, gt=0, le=1)


class DeathParams(_Section):
    """Death from the reporter channel, else from shrinkage + track end in the field."""

    reporter_min_snr: float = Field(5.0, gt=0)
    reporter_min_duration_min: float = Field(8.0, ge=0)
    plateau_fraction: float = Field(0.9, gt=0, le=1)
    plateau_search_min: float = Field(40.0, ge=0)
    host_reporter_max: float | None = Field(0.5, gt=0)
    min_peak_share: float | None = Field(0.5, gt=0, le=1)
    shrink_area_fraction: float = Field(0.6, gt=0, lt=1)
    border_um: float = Field(10.0, ge=0)
    end_margin_min: float = Field(8.0, ge=0)


class KillParams(_Section):
    """A death is a kill when it starts within ``window_min`` of the encounter's end."""

    window_min: float = Field(24.0, ge=0)


class CellInCellParams(_Section):
    """Enclosure of a target by another target (the host)."""

    gap_um: float = Field(1.0, ge=0)
    boundary_fraction: float = Field(0.75, gt=0, le=1)
    inside_fraction: float = Field(0.9, gt=0, le=1)
    min_duration_min: float = Field(8.0, ge=0)
    lead_gap_min: float = Field(8.0, ge=0)
    window_min: float = Field(30.0, ge=0)
    travel_um: float = Field(40.0, ge=0)
    travel_brightness_change: float | None = Field(0.08, gt=0)
    signal_fraction: float | None = Field(0.75, gt=0, le=1)
    signal_ring_um: float = Field(1.5, gt=0)
    signal_level: float = Field(0.35, gt=0, lt=1)
    signal_others_max: float = Field(0.3, ge=0, le=1)
    core_level: float | None = Field(0.7, gt=0, lt=1)
    core_rim_min: float = Field(0.3, ge=0, lt=1)
    core_rim_max: float = Field(0.5, gt=0, lt=1)
    core_depth_um: float = Field(1.9, gt=0)
    core_min_fraction: float = Field(0.1, gt=0, le=1)
    core_lead_max_min: float = Field(12.0, ge=0)
    attack_swap_min_iou: float | None = Field(0.15, gt=0, le=2)
    merge_cover: float | None = Field(0.3, gt=0, le=1)


class EvasionParams(_Section):
    """An encounter is resolved (evasion / nibbling) once the target survives this long.

    A nibbled target that also retreats at least ``retreat_um`` away from
    its effector within ``survive_min`` after the contact is an evasion with
    nibbling, not ``trogocytosis_only``.
    """

    survive_min: float = Field(20.0, ge=0)
    retreat_um: float = Field(5.0, ge=0)


class TrogocytosisParams(_Section):
    """Nibbling: effector gains target signal, or the target loses area without dying.

    ``carried_half_life_min``: label an effector still carries from earlier
    nibbles is decayed with this half-life from the frames before the
    contact to those where the gain is read (None: not decayed).
    ``carried_in_fraction``: in a contact of at least
    ``carried_in_min_contact_min``, when the effector's label at the
    contact's first frame is already this fraction of the level read after
    it (both above the level before), the label came with the effector and
    the gain is taken from that first frame (None: not checked).
    """

    signal_gain_fraction: float = Field(0.08, gt=0)
    area_loss_fraction: float = Field(0.07, gt=0, lt=1)
    window_min: float = Field(12.0, gt=0)
    signal_away_um: float = Field(1.3, ge=0)
    signal_after_min: float = Field(4.0, ge=0)
    carried_half_life_min: float | None = Field(45.0, gt=0)
    carried_in_fraction: float | None = Field(0.8, gt=0)
    carried_in_min_contact_min: float = Field(16.0, ge=0)


class ValidationParams(_Section):
    """Matching predicted to true events (docs/events.md)."""

    iou_min: float = Field(0.5, gt=0, le=1)
    onset_tolerance_min: float = Field(8.0, ge=0)


class GalleryParams(_Section):
    """Event gallery montages."""

    examples: int = Field(4, ge=1, le=20)
    frames: int = Field(6, ge=1, le=20)
    crop_um: float = Field(45.0, gt=0)


class EventParams(_Section):
    """All event-scoring settings (config ``events:``)."""

    contact: ContactParams = ContactParams()
    death: DeathParams = DeathParams()
    kill: KillParams = KillParams()
    cell_in_cell: CellInCellParams = CellInCellParams()
    evasion: EvasionParams = EvasionParams()
    trogocytosis: TrogocytosisParams = TrogocytosisParams()
    validation: ValidationParams = ValidationParams()
    gallery: GalleryParams = GalleryParams()


def event_params(overrides: Mapping[str, Any] | None = None) -> EventParams:
    """Defaults updated with ``overrides`` (the config's ``events:`` section).

    Parameters
    ----------
    overrides : mapping, optional
        Nested mapping; sections and keys as :class:`EventParams`.

    Returns
    -------
    EventParams
        Validated, immutable settings.

    Raises
    ------
    pydantic.ValidationError
        Unknown keys or out-of-range values.
    """
    return EventParams(**dict(overrides or {}))


@dataclass(frozen=True)
class ScoringGrid:
    """The thresholds of :class:`EventParams` in pixels and frames (:func:`to_pixels_frames`)."""

    px: float
    dt: float
    contact_gap_px: float
    contact_min_frames: int
    contact_max_break: int
    contact_same_effector_px: float | None
    reporter_min_snr: float
    reporter_min_frames: int
    plateau_fraction: float
    plateau_search_frames: int
    host_reporter_max: float | None
    min_peak_share: float | None
    shrink_area_fraction: float
    border_px: float
    end_margin_frames: int
    kill_window: int
    cic_gap_px: float
    cic_boundary_fraction: float
    cic_inside_fraction: float
    cic_min_frames: int
    cic_lead_gap: int
    cic_window: int
    cic_travel_px: float
    cic_travel_brightness_change: float | None
    cic_signal_fraction: float | None
    cic_signal_ring_px: float
    cic_signal_level: float
    cic_signal_others_max: float
    cic_core_level: float | None
    cic_core_rim_min: float
    cic_core_rim_max: float
    cic_core_depth_px: float
    cic_core_min_fraction: float
    cic_core_lead_max: int
    cic_attack_swap_min_iou: float | None
    cic_merge_cover: float | None
    survive_frames: int
    retreat_px: float
    trog_signal_gain: float
    trog_area_loss: float
    trog_window: int
    trog_signal_away_px: float = 2.0
    trog_signal_after: int = 1
    trog_carried_half_life: float | None = None
    trog_carried_in_fraction: float | None = None
    trog_carried_in_min_frames: int = 4


def frames_for(minutes: float, frame_interval_min: float) -> int:
    """Whole frames covering ``minutes`` (ceil, tolerant to rounding), >= 0."""
    return max(0, int(math.ceil(minutes / frame_interval_min - 1e-9)))


def to_pixels_frames(params: EventParams, pixel_size_um: float,
                     frame_interval_min: float) -> ScoringGrid:
    """Convert :class:`EventParams` to pixels and frames.

    Durations become whole frames by ceiling (a minimum duration of 8 min at
    4-min frames is 2 frames); a contact lasting ``n`` frames lasts
    ``n * frame_interval_min`` (the simulator's convention).

    Parameters
    ----------
    params : EventParams
    pixel_size_um, frame_interval_min : float
        ``imaging.pixel_size_um`` and ``imaging.frame_interval_min`` (> 0).

    Returns
    -------
    ScoringGrid
    """
    px, dt = float(pixel_size_um), float(frame_interval_min)
    if not (px > 0 and dt > 0):
        raise ValueError(f"pixel size and frame interval must be > 0, got {px}, {dt}")
    c, d, k, ci = params.contact, params.death, params.kill, params.cell_in_cell
    tr = params.trogocytosis
    return ScoringGrid(
        px=px, dt=dt,
        contact_gap_px=c.gap_um / px,
        contact_min_frames=max(1, frames_for(c.min_duration_min, dt)),
        contact_max_break=frames_for(c.max_break_min, dt),
        contact_same_effector_px=None if c.same_effector_um is None else c.same_effector_um / px,
        reporter_min_snr=d.reporter_min_snr,
        reporter_min_frames=max(1, frames_for(d.reporter_min_duration_min, dt)),
        plateau_fraction=d.plateau_fraction,
        plateau_search_frames=frames_for(d.plateau_search_min, dt),
        host_reporter_max=d.host_reporter_max,
        min_peak_share=d.min_peak_share,
        shrink_area_fraction=d.shrink_area_fraction,
        border_px=d.border_um / px,
        end_margin_frames=frames_for(d.end_margin_min, dt),
        kill_window=frames_for(k.window_min, dt),
        cic_gap_px=ci.gap_um / px,
        cic_boundary_fraction=ci.boundary_fraction,
        cic_inside_fraction=ci.inside_fraction,
        cic_min_frames=max(1, frames_for(ci.min_duration_min, dt)),
        cic_lead_gap=frames_for(ci.lead_gap_min, dt),
        cic_window=frames_for(ci.window_min, dt),
        cic_travel_px=ci.travel_um / px,
        cic_travel_brightness_change=ci.travel_brightness_change,
        cic_signal_fraction=ci.signal_fraction,
        cic_signal_ring_px=ci.signal_ring_um / px,
        cic_signal_level=ci.signal_level,
        cic_signal_others_max=ci.signal_others_max,
        cic_core_level=ci.core_level,
        cic_core_rim_min=ci.core_rim_min,
        cic_core_rim_max=ci.core_rim_max,
        cic_core_depth_px=ci.core_depth_um / px,
        cic_core_min_fraction=ci.core_min_fraction,
        cic_core_lead_max=frames_for(ci.core_lead_max_min, dt),
        cic_attack_swap_min_iou=ci.attack_swap_min_iou,
        cic_merge_cover=ci.merge_cover,
        survive_frames=frames_for(params.evasion.survive_min, dt),
        retreat_px=params.evasion.retreat_um / px,
        trog_signal_gain=tr.signal_gain_fraction,
        trog_area_loss=tr.area_loss_fraction,
        trog_window=max(1, frames_for(tr.window_min, dt)),
        trog_signal_away_px=tr.signal_away_um / px,
        trog_signal_after=frames_for(tr.signal_after_min, dt),
        trog_carried_half_life=(None if tr.carried_half_life_min is None
                                else tr.carried_half_life_min / dt),
        trog_carried_in_fraction=tr.carried_in_fraction,
        trog_carried_in_min_frames=frames_for(tr.carried_in_min_contact_min, dt),
    )
