"""The statistics stage in one call.

Study tables -> wells, conditions, comparisons, dose-response and plate QC tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from livescreen.stats.dose import dose_response
from livescreen.stats.estimates import (
    comparisons,
    condition_summary,
    logrank_vs_control,
    survival_data,
)
from livescreen.stats.qc import plate_qc
from livescreen.stats.wells import FRACTIONS, METRICS, well_summary

#: defaults of the ``stats:`` config section
DEFAULTS: dict[str, Any] = {
    "confidence": 0.95,
    "metrics": list(METRICS),
    "dose_response_metrics": [*FRACTIONS, "kill_rate_per_effector_h"],
    "dose_response_min_levels": 4,
    "qc_metrics": ["frac_killed", "frac_cell_in_cell"],
}


def settings(stats_cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``stats:`` config section over :data:`DEFAULTS`."""
    return {**DEFAULTS, **dict(stats_cfg or {})}


def analyse(fates: pd.DataFrame, effectors: pd.DataFrame, samples: pd.DataFrame,
            control: str, stats_cfg: Mapping[str, Any] | None = None) -> dict[str, pd.DataFrame]:
    """Run every statistic of the stage.

    Parameters
    ----------
    fates : pandas.DataFrame
        Study fates (joined with the sheet, with ``follow_up_min``).
    effectors : pandas.DataFrame
        Effectors of all sites.
    samples : pandas.DataFrame
        The sample sheet.
    control : str
        Control condition.
    stats_cfg : mapping, optional
        ``stats:`` config section.

    Returns
    -------
    dict
        ``wells``, ``conditions``, ``comparisons``, ``dose_response``, ``plate_qc``.
    """
    s = settings(stats_cfg)
    wells = well_summary(fates, effectors, samples)
    surv = survival_data(fates) if len(fates) else pd.DataFrame(
        columns=["condition", "plate", "well", "duration_min", "event"])
    lr = logrank_vs_control(surv, control)
    return {
        "wells": wells,
        "conditions": condition_summary(wells, s["metrics"], s["confidence"]),
        "comparisons": comparisons(wells, control, s["metrics"], s["confidence"], extra=lr),
        "dose_response": dose_response(wells, control, s["dose_response_metrics"],
                                       s["confidence"], s["dose_response_min_levels"]),
        "plate_qc": plate_qc(wells, s["qc_metrics"]),
    }
