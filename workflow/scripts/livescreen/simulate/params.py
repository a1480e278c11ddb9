"""Simulation parameters: config (physical units) and a sample row -> :class:`SimulationParams`.

The ``simulate:`` config section is merged over :data:`DEFAULTS` (so a config
only needs the keys it changes), the site's compound and dose are turned into
outcome probabilities with a Hill function, and everything is frozen in one
:class:`SimulationParams`. Conversion to pixels and frames happens in the
model, from ``pixel_size_um`` and ``frame_interval_min``.
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Outcomes of a decisive effector-target encounter (encounters.outcome vocabulary
#: without ``censored``), in the order used for random draws.
OUTCOMES = ("kill", "cell_in_cell", "trogocytosis_only", "evasion")

#: Defaults of every ``simulate:`` key (physical units: um, min, per hour).
DEFAULTS: dict[str, Any] = {
    "enabled": False,
    "seed": 0,
    "n_frames": 36,
    "height_px": 256,
    "width_px": 256,
    "margin_um": 25.0,
    "targets": {
        "density_per_mm2": 1300.0,
        "diameter_um": [12.0, 25.0],
        "irregularity": 0.10,
        "shape_drift_rad_per_min": 0.01,
        "speed_um_per_min": 0.25,
        "persistence_min": 30.0,
        "min_distance_fraction": 0.9,
        "cluster_fraction": 0.3,
        "division_rate_per_h": 0.05,
        "brightness_cv": 0.2,
    },
    "effectors": {
        "density_per_mm2": 500.0,
        "diameter_um": [7.0, 10.0],
        "irregularity": 0.05,
        "speed_um_per_min": 3.0,
        "speed_cv": 0.3,
        "persistence_min": 6.0,
        "attraction_range_um": 45.0,
        "attraction_weight": 0.6,
        "clearance_um": 1.5,
        "refractory_min": 8.0,
        "brightness_cv": 0.15,
    },
    "contact": {
        "duration_median_min": 28.0,
        "duration_sigma_log": 0.45,
        "duration_min_min": 8.0,
        "duration_max_min": 120.0,
    },
    "outcomes": {
        "baseline": {"kill": 0.25, "cell_in_cell": 0.35, "trogocytosis_only": 0.15,
                     "evasion": 0.25},
    },
    "compounds": {
        "none": {},
    },
    "trogocytosis": {
        "with_other_outcome_prob": 0.25,
        "area_loss_fraction": [0.08, 0.25],
        "effector_signal": [0.15, 0.4],
        "signal_half_life_min": 60.0,
    },
    "death": {
        "dying_duration_min": 16.0,
        "shrink_to": 0.65,
        "n_blebs": [3, 6],
        "dead_half_life_min": 30.0,
        "visible_min_fraction": 0.25,
        "fragment_prob": 0.5,
        "spontaneous_per_h": 0.01,
    },
    "cell_in_cell": {
        "engulf_duration_min": 12.0,
        "host_search_um": 60.0,
        "margin_um": 1.5,
        "inner_death_prob": 0.3,
        "inner_death_delay_min": 50.0,
        "spontaneous_per_h": 0.004,
    },
    "evasion": {
        "speed_um_per_min": 0.8,
        "duration_min": 24.0,
    },
    "render": {
        "psf_sigma_um": 0.7,
        "photons_per_unit": {"target": 300.0, "effector": 300.0, "death": 200.0},
        "background": {"target": 0.08, "effector": 0.05, "death": 0.04},
        "background_unevenness": 0.3,
        "bleach_half_life_min": {"target": 500.0, "effector": 350.0, "death": 1000.0},
        "gain_adu_per_photon": 1.0,
        "read_noise_adu": 3.0,
        "offset_adu": 100.0,
    },
}

_DOSE_TO_UM = {"um": 1.0, "µm": 1.0, "μm": 1.0, "nm": 1e-3, "mm": 1e3, "m": 1e6, "pm": 1e-6}


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return a new dict: ``base`` with ``override`` merged in recursively.

    Parameters
    ----------
    base, override : mapping
        Nested mappings; values of ``override`` win, nested mappings are merged.

    Returns
    -------
    dict
        A deep copy; neither input is modified.
    """
    out = copy.deepcopy(dict(base))
    for key, value in (override or {}).items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def hill(dose_um: float, ec50_um: float, hill_coef: float) -> float:
    """Fraction of the maximal effect at ``dose_um``: d^h / (d^h + EC50^h).

    Parameters
    ----------
    dose_um : float
        Dose in micromolar (0 or negative -> 0).
    ec50_um : float
        Dose of half-maximal effect, micromolar (> 0).
    hill_coef : float
        Hill coefficient h (> 0).

    Returns
    -------
    float
        Value in [0, 1].
    """
    if dose_um <= 0:
        return 0.0
    if ec50_um <= 0 or hill_coef <= 0:
        raise ValueError(f"ec50_um and hill must be > 0, got {ec50_um}, {hill_coef}")
    return 1.0 / (1.0 + (ec50_um / dose_um) ** hill_coef)


def dose_in_um(dose: Any, unit: Any) -> float:
    """Convert a sample-sheet dose to micromolar.

    Parameters
    ----------
    dose : float or str or None
        Dose value; missing/NaN means 0.
    unit : str or None
        One of uM/µM, nM, pM, mM, M (case-insensitive); missing means uM.

    Returns
    -------
    float
        Dose in micromolar.
    """
    try:
        value = float(dose)
    except (TypeError, ValueError):
        value = 0.0
    if not math.isfinite(value):
        value = 0.0
    key = str(unit).strip().lower() if unit is not None and str(unit) != "nan" else "um"
    if key not in _DOSE_TO_UM:
        raise ValueError(f"unknown dose_unit '{unit}' (known: uM, nM, pM, mM, M)")
    return value * _DOSE_TO_UM[key]


def outcome_probabilities(baseline: Mapping[str, float], compound: Mapping[str, Any],
                          dose_um: float) -> tuple[dict[str, float], float]:
    """Outcome probabilities of a decisive encounter at one compound dose.

    ``p_o = base_o + (max_o - base_o) * f(dose)`` for kill, cell_in_cell and
    trogocytosis_only (``max_o`` defaults to ``base_o``: no effect), with
    ``f`` the Hill function of the compound; evasion takes the remainder.

    Parameters
    ----------
    baseline : mapping
        Baseline probabilities of :data:`OUTCOMES`; must sum to 1.
    compound : mapping
        Compound parameters: ``ec50_um``, ``hill`` and optional ``kill_max``,
        ``cell_in_cell_max``, ``trogocytosis_only_max``. Empty = no effect.
    dose_um : float
        Dose in micromolar.

    Returns
    -------
    probs : dict
        Outcome -> probability, summing to 1.
    f : float
        The Hill fraction used.

    Raises
    ------
    ValueError
        If the baseline does not sum to 1 or the result is not a distribution.
    """
    missing = [o for o in OUTCOMES if o not in baseline]
    if missing:
        raise ValueError(f"simulate.outcomes.baseline lacks {missing}")
    total = sum(float(baseline[o]) for o in OUTCOMES)
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"simulate.outcomes.baseline must sum to 1, sums to {total:.6g}")
    f = hill(dose_um, float(compound.get("ec50_um", 1.0)), float(compound.get("hill", 1.0))) \
        if compound else 0.0
    probs = {}
    for o in OUTCOMES[:3]:
        base = float(baseline[o])
        top = float(compound.get(f"{o}_max", base)) if compound else base
        probs[o] = base + (top - base) * f
    probs["evasion"] = 1.0 - sum(probs.values())
    if any(p < -1e-9 or p > 1 + 1e-9 for p in probs.values()):
        raise ValueError(f"outcome probabilities out of [0, 1] at dose {dose_um} uM: {probs}; "
                         "lower the compound's *_max values")
    probs = {o: min(max(p, 0.0), 1.0) for o, p in probs.items()}
    return probs, f


def site_seed(base_seed: int, plate: Any, well: Any, field_: Any) -> int:
    """Deterministic per-site seed from the base seed and the site's keys.

    Uses SHA-256 (not Python's salted ``hash``), so it is stable across runs
    and machines.

    Parameters
    ----------
    base_seed : int
        ``simulate.seed``.
    plate, well, field_ : object
        Site keys (converted with ``str``).

    Returns
    -------
    int
        A 63-bit non-negative integer.
    """
    text = f"{int(base_seed)}|{plate}|{well}|{field_}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big") >> 1


@dataclass(frozen=True)
class SimulationParams:
    """Everything one site's simulation needs (treat as read-only).

    Attributes
    ----------
    height_px, width_px, n_frames : int
        Movie size.
    pixel_size_um, frame_interval_min : float
        From ``imaging``.
    channels : tuple of str
        Channel roles in channel order, e.g. ``("target", "effector", "death")``.
    cfg : dict
        The ``simulate:`` section merged over :data:`DEFAULTS` (physical units).
    sample : dict
        The sample-sheet row.
    compound : str
        Compound name (``"none"`` if empty).
    dose_um : float
        Dose in micromolar.
    hill_fraction : float
        Hill fraction f(dose) of the compound.
    outcome_probs : dict
        Probability of each of :data:`OUTCOMES` for a decisive encounter.
    spontaneous_death_per_h : float
        Hazard of death without contact (baseline, raised by the compound).
    """

    height_px: int
    width_px: int
    n_frames: int
    pixel_size_um: float
    frame_interval_min: float
    channels: tuple[str, ...]
    cfg: dict = field(repr=False)
    sample: dict = field(default_factory=dict)
    compound: str = "none"
    dose_um: float = 0.0
    hill_fraction: float = 0.0
    outcome_probs: dict = field(default_factory=dict)
    spontaneous_death_per_h: float = 0.0

    def truth_rates(self) -> dict[str, Any]:
        """The rates actually used at this site (``truth.json`` and ``SimulatedSite``)."""
        out = {"compound": self.compound, "dose_um": self.dose_um,
               "hill_fraction": self.hill_fraction,
               "spontaneous_death_per_h": self.spontaneous_death_per_h,
               "division_rate_per_h": float(self.cfg["targets"]["division_rate_per_h"]),
               "inner_death_prob": float(self.cfg["cell_in_cell"]["inner_death_prob"]),
               "trogocytosis_with_other_outcome_prob":
                   float(self.cfg["trogocytosis"]["with_other_outcome_prob"])}
        out.update({f"p_{o}": float(p) for o, p in self.outcome_probs.items()})
        return out


def channel_roles(channels: Mapping[str, Any]) -> tuple[str, ...]:
    """Channel roles ordered by channel index (``None`` indices dropped).

    Parameters
    ----------
    channels : mapping
        ``imaging.channels``: role -> 0-based index or None.

    Returns
    -------
    tuple of str

    Raises
    ------
    ValueError
        If target/effector are missing, a role is unknown, or indices are not 0..C-1.
    """
    roles = {r: int(i) for r, i in channels.items() if i is not None}
    unknown = set(roles) - {"target", "effector", "death"}
    if unknown or not {"target", "effector"} <= set(roles):
        raise ValueError(f"imaging.channels must name target and effector (and optionally "
                         f"death), got {dict(channels)}")
    if sorted(roles.values()) != list(range(len(roles))):
        raise ValueError(f"imaging.channels indices must be 0..C-1 without gaps: {roles}")
    return tuple(sorted(roles, key=roles.get))


def params_for_site(sim_cfg: Mapping[str, Any], imaging: Mapping[str, Any],
                    sample: Mapping[str, Any]) -> SimulationParams:
    """Build the parameters of one site's simulation.

    Parameters
    ----------
    sim_cfg : mapping
        The ``simulate:`` config section (missing keys take :data:`DEFAULTS`).
    imaging : mapping
        The ``imaging:`` section (``pixel_size_um``, ``frame_interval_min``, ``channels``).
    sample : mapping
        One sample-sheet row (``compound``, ``dose``, ``dose_unit`` used; all kept).

    Returns
    -------
    SimulationParams

    Raises
    ------
    ValueError
        For an unknown compound or unit, or probabilities that are not a distribution.
    """
    cfg = deep_merge(DEFAULTS, sim_cfg)
    compound = sample.get("compound")
    compound = "none" if compound is None or str(compound) in ("", "nan", "None") \
        else str(compound)
    compounds = cfg.get("compounds") or {}
    if compound not in compounds and compound != "none":
        raise ValueError(f"compound '{compound}' of site {sample.get('plate')}/"
                         f"{sample.get('well')}/{sample.get('field')} has no entry under "
                         f"simulate.compounds (known: {sorted(compounds)})")
    ccfg = dict(compounds.get(compound) or {})
    dose_um = dose_in_um(sample.get("dose"), sample.get("dose_unit"))
    probs, f = outcome_probabilities(cfg["outcomes"]["baseline"], ccfg, dose_um)
    base_death = float(cfg["death"]["spontaneous_per_h"])
    death = base_death + (float(ccfg.get("spontaneous_death_max_per_h", base_death))
                          - base_death) * f
    return SimulationParams(
        height_px=int(cfg["height_px"]), width_px=int(cfg["width_px"]),
        n_frames=int(cfg["n_frames"]), pixel_size_um=float(imaging["pixel_size_um"]),
        frame_interval_min=float(imaging["frame_interval_min"]),
        channels=channel_roles(imaging["channels"]), cfg=cfg,
        sample={k: (v if isinstance(v, (int, float, str, bool)) or v is None else str(v))
                for k, v in sample.items()},
        compound=compound, dose_um=dose_um, hill_fraction=f, outcome_probs=probs,
        spontaneous_death_per_h=death)
