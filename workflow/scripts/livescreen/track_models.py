"""The project's btrack motion and hypothesis models, in physical units.

btrack needs a Kalman motion model and a hypothesis model in pixels and
frames. This module owns both (btrack's downloadable example configs are never
used): :class:`TrackingParams` holds the settings of one population in
micrometres and minutes, with separate defaults for slow, dividing targets
(:data:`TARGET_DEFAULTS`) and fast, non-dividing effectors
(:data:`EFFECTOR_DEFAULTS`); :func:`btrack_config` converts them to a
:class:`btrack.config.TrackerConfig` for a given pixel size, frame interval
and image size.

Motion model: constant velocity in (x, y) with white-noise acceleration; the
z axis is pinned (tiny variances) so that btrack's per-axis assignment
probability is a 2-D one. All conversions are documented on
:func:`btrack_config` and in docs/tracking.md.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

log = logging.getLogger(__name__)

#: btrack's C++ core accepts ``max_lost`` in 1..10 frames and ``accuracy`` in 0..10.
BTRACK_MAX_LOST = 10
BTRACK_MAX_ACCURACY = 10.0
_PINNED = 1e-6  # variance of the unused z axis


class TrackingParams(BaseModel):
    """Tracking settings of one population, in micrometres and minutes.

    Attributes
    ----------
    max_speed_um_per_min : float
        Fastest plausible movement. Sets btrack's search radius (the farthest a
        track may jump between consecutive detections).
    speed_um_per_min : float
        Typical speed. Sets the Kalman process noise (how much the velocity may
        change per frame) and the initial velocity uncertainty.
    position_noise_um : float
        Centroid jitter of the segmentation (Kalman measurement noise).
    max_gap_min : float
        A track survives this long without a detection (btrack ``max_lost``,
        at least 1 and at most 10 frames) and tracklets separated by up to this
        long are joined by the global optimisation.
    divisions : bool
        Allow a track to divide into two daughters (btrack ``P_branch``).
    division_distance_um : float
        Length scale of how far daughters appear from their mother's end
        (btrack ``lambda_branch``).
    division_min_size_ratio : float
        A division is kept only when the smaller daughter's area is at least
        this fraction of the larger's (mitosis halves a cell; a fragment or a
        cell wrapping around another is not a division).
    division_area_change : float
        ... and when the daughters' summed area is within 1 -/+ this of the
        mother's last area ...
    division_max_daughter_share : float or None
        ... and each daughter's first area is at most this fraction of the
        mother's last area (an inner cell jumping into its host, or a host
        ring under a new id, gives a "daughter" as big as the mother) ...
    division_min_daughter_min : float
        ... and each daughter is seen in this long a run of frames (a
        one-frame flicker is not a daughter), unless the movie ends first.
    relink_brightness_change : float or None
        A link onto an object whose mean intensity in the population's own
        channel differs from the track's previous object's by more than this
        (absolute natural-log ratio; 0.1 ~ 10 %) is given to a track that
        ended just before, nearby, whose brightness the object has
        (:func:`livescreen.track.relink_by_brightness`; an inner cell landing
        where its host was). ``None``: off (the effector default).
    relink_brightness_match : float
        ... the object's brightness must match the ended track's within this
        (log ratio) ...
    relink_max_jump_um : float
        ... and lie at most this far from the ended track's last position ...
    relink_max_area_ratio : float
        ... and have an area within this factor of the ended track's.
    border_um : float
        Tracks may start or end within this distance of the image edge without
        penalty (btrack ``theta_dist``; ``lambda_dist`` is half of it).
    link_distance_um : float
        Length scale of the distance penalty for joining tracklets across gaps
        (btrack ``lambda_link``).
    accuracy : float
        Half-width, in units of ``position_noise_um``, of the window over which
        btrack integrates the predicted position density (btrack ``accuracy``,
        converted to pixels and capped at 10).
    prob_not_assign : float
        Probability that a track is not assigned to any detection in a frame.
    segmentation_miss_rate : float
        Expected fraction of missed or spurious detections (false-positive
        hypothesis).
    optimise : bool
        Run btrack's global optimisation (GLPK) that joins tracklets across
        gaps and assigns divisions. Without it there are no divisions.
    optimiser_time_limit_s : float
        Time limit of the optimisation.
    update_method : {"approximate", "exact"}
        btrack Bayesian update: "approximate" only scores detections within the
        search radius (fast for dense fields); "exact" scores all pairs.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_speed_um_per_min: float = Field(gt=0)
    speed_um_per_min: float = Field(gt=0)
    position_noise_um: float = Field(gt=0)
    max_gap_min: float = Field(ge=0)
    divisions: bool
    division_distance_um: float = Field(default=10.0, gt=0)
    division_min_size_ratio: float = Field(default=0.4, ge=0, le=1)
    division_area_change: float = Field(default=0.5, gt=0)
    division_max_daughter_share: float | None = Field(default=0.8, gt=0)
    division_min_daughter_min: float = Field(default=8.0, ge=0)
    relink_brightness_change: float | None = Field(default=None, gt=0)
    relink_brightness_match: float = Field(default=0.05, gt=0)
    relink_max_jump_um: float = Field(default=25.0, gt=0)
    relink_max_area_ratio: float = Field(default=1.5, ge=1)
    border_um: float = Field(default=10.0, ge=0)
    link_distance_um: float = Field(default=10.0, gt=0)
    accuracy: float = Field(default=3.0, gt=0)
    prob_not_assign: float = Field(default=0.1, gt=0, lt=1)
    segmentation_miss_rate: float = Field(default=0.1, ge=0, le=1)
    optimise: bool = True
    optimiser_time_limit_s: float = Field(default=60.0, gt=0)
    update_method: Literal["approximate", "exact"] = "approximate"

    @model_validator(mode="after")
    def _speeds(self) -> TrackingParams:
        if self.speed_um_per_min > self.max_speed_um_per_min:
            raise ValueError("speed_um_per_min must not exceed max_speed_um_per_min")
        return self


#: Cancer cells: slow, crawling, dividing.
TARGET_DEFAULTS: dict[str, Any] = {
    "max_speed_um_per_min": 1.5,
    "speed_um_per_min": 0.5,
    "position_noise_um": 1.0,
    "max_gap_min": 12.0,
    "divisions": True,
    "division_distance_um": 10.0,
    "relink_brightness_change": 0.1,
    "border_um": 10.0,
    "link_distance_um": 10.0,
}

#: T / NK cells: fast, migratory, not dividing on the time scale of a screen.
EFFECTOR_DEFAULTS: dict[str, Any] = {
    "max_speed_um_per_min": 15.0,
    "speed_um_per_min": 5.0,
    "position_noise_um": 1.0,
    "max_gap_min": 8.0,
    "divisions": False,
    "division_distance_um": 10.0,
    "border_um": 20.0,
    "link_distance_um": 20.0,
}

DEFAULTS: dict[str, dict[str, Any]] = {"target": TARGET_DEFAULTS, "effector": EFFECTOR_DEFAULTS}


def tracking_params(population: str, overrides: Mapping[str, Any] | None = None) -> TrackingParams:
    """Settings of one population: the defaults updated with ``overrides``.

    Parameters
    ----------
    population : {"target", "effector"}
        Which defaults to start from.
    overrides : mapping, optional
        Keys of :class:`TrackingParams` to change, e.g. ``config["track"]["target"]``.

    Returns
    -------
    TrackingParams
        Validated, immutable settings.
    """
    if population not in DEFAULTS:
        raise ValueError(f"population must be one of {sorted(DEFAULTS)}, got {population!r}")
    return TrackingParams(**{**DEFAULTS[population], **dict(overrides or {})})


def _frames(minutes: float, frame_interval_min: float) -> int:
    return int(math.ceil(minutes / frame_interval_min - 1e-9))


def max_lost_frames(params: TrackingParams, frame_interval_min: float) -> int:
    """``max_gap_min`` in frames, clipped to btrack's allowed 1..10 (warns when clipped)."""
    n = _frames(params.max_gap_min, frame_interval_min)
    clipped = min(max(n, 1), BTRACK_MAX_LOST)
    if clipped != n and n > BTRACK_MAX_LOST:
        log.warning("max_gap_min=%.3g min is %d frames; btrack allows at most %d",
                    params.max_gap_min, n, BTRACK_MAX_LOST)
    return clipped


def _motion_model(params: TrackingParams, px: float, dt: float, max_lost: int) -> dict:
    step = params.speed_um_per_min * dt / px  # typical displacement per frame, px
    noise = params.position_noise_um / px
    pin = _PINNED
    eye3 = np.eye(3)
    a = np.block([[eye3, eye3], [np.zeros((3, 3)), eye3]])
    h = np.hstack([eye3, np.zeros((3, 3))])
    # initial covariance: position known to the measurement noise, velocity to the speed
    p = np.diag([noise**2, noise**2, pin, step**2, step**2, pin])
    # white-noise acceleration per axis: Q = s^2 [[1/4, 1/2], [1/2, 1]] (dt = 1 frame)
    q = np.zeros((6, 6))
    for ax in (0, 1):
        q[ax, ax], q[ax, ax + 3], q[ax + 3, ax], q[ax + 3, ax + 3] = 0.25, 0.5, 0.5, 1.0
    q = q * step**2
    q[2, 2] = q[5, 5] = pin
    r = np.diag([noise**2, noise**2, pin])
    accuracy = min(params.accuracy * noise, BTRACK_MAX_ACCURACY)
    return {
        "name": "livescreen_constant_velocity",
        "measurements": 3, "states": 6, "dt": 1.0,
        "A": a, "H": h, "P": p, "Q": q, "R": r,
        "accuracy": accuracy, "max_lost": max_lost,
        "prob_not_assign": params.prob_not_assign,
    }


def _hypothesis_model(params: TrackingParams, px: float, dt: float, max_lost: int) -> dict:
    hyps = ["P_FP", "P_init", "P_term", "P_link"] + (["P_branch"] if params.divisions else [])
    theta_dist = params.border_um / px
    return {
        "name": "livescreen_hypotheses",
        "hypotheses": hyps,
        "lambda_time": 5.0,
        "lambda_dist": max(theta_dist / 2.0, 1.0),
        "lambda_link": params.link_distance_um / px,
        "lambda_branch": params.division_distance_um / px,
        "eta": 1e-10,
        "theta_dist": theta_dist,
        "theta_time": 5.0,
        # farthest (px) and longest (frames) a tracklet gap may be to be joined
        "dist_thresh": params.max_speed_um_per_min * dt * (max_lost + 1) / px,
        "time_thresh": float(max_lost + 1),
        "apop_thresh": 5,
        "segmentation_miss_rate": params.segmentation_miss_rate,
        "apoptosis_rate": 0.001,
        # tracks may start or end anywhere (cells die, divide, get internalised)
        "relax": True,
    }


def btrack_config(params: TrackingParams, pixel_size_um: float, frame_interval_min: float,
                  shape_yx: tuple[int, int]):
    """Convert physical settings to a btrack ``TrackerConfig`` in pixels and frames.

    Parameters
    ----------
    params : TrackingParams
        Settings of one population.
    pixel_size_um : float
        Micrometres per pixel.
    frame_interval_min : float
        Minutes per frame.
    shape_yx : tuple of int
        Image size (Y, X) in pixels; the tracking volume.

    Returns
    -------
    btrack.config.TrackerConfig
        ``max_search_radius = max_speed * dt / px`` (at least 2 px),
        ``max_lost = ceil(max_gap / dt)`` (1..10), Kalman noises from
        ``speed * dt / px`` and ``position_noise / px``, hypothesis distances
        divided by the pixel size, ``P_branch`` only when ``divisions``.

    Notes
    -----
    Imports only ``btrack.config`` / ``btrack.constants`` (never ``btrack.datasets``).
    """
    if pixel_size_um <= 0 or frame_interval_min <= 0:
        raise ValueError("pixel_size_um and frame_interval_min must be > 0")
    from btrack.config import TrackerConfig  # local: keeps this module importable cheaply
    from btrack.constants import BayesianUpdates

    px, dt = float(pixel_size_um), float(frame_interval_min)
    max_lost = max_lost_frames(params, dt)
    h, w = (int(s) for s in shape_yx)
    return TrackerConfig(
        name="livescreen",
        verbose=False,
        motion_model=_motion_model(params, px, dt, max_lost),
        hypothesis_model=_hypothesis_model(params, px, dt, max_lost),
        max_search_radius=max(params.max_speed_um_per_min * dt / px, 2.0),
        volume=((0.0, float(w)), (0.0, float(h)), (-1e5, 1e5)),
        update_method=BayesianUpdates[params.update_method.upper()],
        optimizer_options={"tm_lim": int(params.optimiser_time_limit_s * 1000),
                           "msg_lev": "GLP_MSG_OFF"},
        tracking_updates=["MOTION"],
        enable_optimisation=params.optimise,
    )
