"""Contracts (pandera) of the study tables in ``results/tables/``.

Columns are documented in docs/statistics.md. A value that cannot be computed
(zero denominator, too few wells) is null and the row's ``note`` says why:
each model with a ``note`` column checks that no null goes unexplained.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

FATE_OUTCOMES = ["killed", "cell_in_cell", "evaded", "nibbled", "uncontacted", "censored", "died",
                 "dead_at_start", "inner_piece"]
ENCOUNTER_OUTCOMES = ["kill", "cell_in_cell", "evasion", "trogocytosis_only", "censored"]
ROLES = ["sample", "negative_control", "positive_control"]


def nulls_explained(df: pd.DataFrame, columns: list[str]) -> pd.Series:
    """True for rows whose listed columns are all set or whose ``note`` is non-empty."""
    cols = [c for c in columns if c in df.columns]
    return ~df[cols].isna().any(axis=1) | df["note"].fillna("").str.len().gt(0)


class _Study(pa.DataFrameModel):
    plate: Series[str]
    well: Series[str]
    condition: Series[str]
    compound: Series[str]
    dose: Series[float] = pa.Field(ge=0)
    dose_unit: Series[str]
    role: Series[str] = pa.Field(isin=ROLES)

    class Config:
        strict = False
        coerce = True


class Encounters(_Study):
    """All encounters of the study joined with the sample sheet."""

    field: Series[str]
    encounter_id: Series[int]
    target_track_id: Series[int]
    effector_track_id: Series[int]
    duration_min: Series[float] = pa.Field(ge=0)
    outcome: Series[str] = pa.Field(isin=ENCOUNTER_OUTCOMES)


class Fates(_Study):
    """All target fates joined with the sample sheet, plus follow-up times."""

    field: Series[str]
    target_track_id: Series[int]
    contacted: Series[bool]
    outcome: Series[str] = pa.Field(isin=FATE_OUTCOMES)
    time_to_death_min: Series[float] = pa.Field(nullable=True)
    first_contact_min: Series[float] = pa.Field(nullable=True)
    follow_up_min: Series[float] = pa.Field(nullable=True)


class Wells(_Study):
    """One row per well: counts, outcome fractions among contacted resolved targets."""

    n_sites: Series[int] = pa.Field(ge=1)
    n_targets: Series[int] = pa.Field(ge=0)
    n_contacted: Series[int] = pa.Field(ge=0)
    n_resolved: Series[int] = pa.Field(ge=0)
    n_censored: Series[int] = pa.Field(ge=0)
    n_killed: Series[int] = pa.Field(ge=0)
    n_cell_in_cell: Series[int] = pa.Field(ge=0)
    n_evaded: Series[int] = pa.Field(ge=0)
    n_nibbled: Series[int] = pa.Field(ge=0)
    n_effectors: Series[int] = pa.Field(ge=0)
    effector_kills: Series[int] = pa.Field(ge=0)
    effector_hours: Series[float] = pa.Field(ge=0)
    frac_killed: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    frac_cell_in_cell: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    frac_evaded: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    frac_nibbled: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    kill_rate_per_effector_h: Series[float] = pa.Field(ge=0, nullable=True)
    median_time_to_kill_min: Series[float] = pa.Field(ge=0, nullable=True)
    note: Series[str]

    @pa.dataframe_check
    def nulls_have_note(cls, df: pd.DataFrame) -> pd.Series:
        """Every null estimate is explained in ``note``."""
        return nulls_explained(df, ["frac_killed", "kill_rate_per_effector_h",
                                    "median_time_to_kill_min"])


class Conditions(pa.DataFrameModel):
    """Per condition and metric: mean over wells with a t interval."""

    condition: Series[str]
    compound: Series[str]
    dose: Series[float] = pa.Field(ge=0)
    dose_unit: Series[str]
    role: Series[str] = pa.Field(isin=ROLES)
    metric: Series[str]
    mean: Series[float] = pa.Field(nullable=True)
    ci_low: Series[float] = pa.Field(nullable=True)
    ci_high: Series[float] = pa.Field(nullable=True)
    sd: Series[float] = pa.Field(nullable=True, ge=0)
    n_wells: Series[int] = pa.Field(ge=0)
    n_wells_total: Series[int] = pa.Field(ge=0)
    n_cells: Series[int] = pa.Field(ge=0)
    method: Series[str]
    note: Series[str]

    @pa.dataframe_check
    def nulls_have_note(cls, df: pd.DataFrame) -> pd.Series:
        """Every null estimate is explained in ``note``."""
        return nulls_explained(df, ["mean", "ci_low", "ci_high"])

    class Config:
        strict = True
        coerce = True


class Comparisons(pa.DataFrameModel):
    """Each condition against the control, per metric."""

    condition: Series[str]
    control: Series[str]
    metric: Series[str]
    estimate: Series[float] = pa.Field(nullable=True)
    estimate_control: Series[float] = pa.Field(nullable=True)
    difference: Series[float] = pa.Field(nullable=True)
    diff_ci_low: Series[float] = pa.Field(nullable=True)
    diff_ci_high: Series[float] = pa.Field(nullable=True)
    ratio: Series[float] = pa.Field(nullable=True, ge=0)
    ratio_ci_low: Series[float] = pa.Field(nullable=True, ge=0)
    ratio_ci_high: Series[float] = pa.Field(nullable=True, ge=0)
    statistic: Series[float] = pa.Field(nullable=True)
    p_value: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    q_value: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    n_wells: Series[int] = pa.Field(ge=0)
    n_wells_control: Series[int] = pa.Field(ge=0)
    method: Series[str]
    note: Series[str]

    @pa.dataframe_check
    def nulls_have_note(cls, df: pd.DataFrame) -> pd.Series:
        """Every null estimate is explained in ``note``."""
        return nulls_explained(df, ["difference", "diff_ci_low", "p_value", "q_value"])

    class Config:
        strict = True
        coerce = True


class DoseResponse(pa.DataFrameModel):
    """4PL fit per compound and metric (``fitted`` false: see ``note``)."""

    compound: Series[str]
    dose_unit: Series[str]
    metric: Series[str]
    fitted: Series[bool]
    bottom: Series[float] = pa.Field(nullable=True)
    top: Series[float] = pa.Field(nullable=True)
    ec50: Series[float] = pa.Field(nullable=True, gt=0)
    ec50_ci_low: Series[float] = pa.Field(nullable=True, gt=0)
    ec50_ci_high: Series[float] = pa.Field(nullable=True, gt=0)
    hill: Series[float] = pa.Field(nullable=True)
    r_squared: Series[float] = pa.Field(nullable=True)
    rmse: Series[float] = pa.Field(nullable=True, ge=0)
    n_points: Series[int] = pa.Field(ge=0)
    n_doses: Series[int] = pa.Field(ge=0)
    df: Series[int]
    method: Series[str]
    note: Series[str]

    @pa.dataframe_check
    def nulls_have_note(cls, df: pd.DataFrame) -> pd.Series:
        """Every null estimate is explained in ``note``."""
        return nulls_explained(df, ["ec50", "ec50_ci_low", "ec50_ci_high"])

    class Config:
        strict = True
        coerce = True


class PlateQC(pa.DataFrameModel):
    """Z' and SSMD per plate and metric."""

    plate: Series[str]
    metric: Series[str]
    n_neg: Series[int] = pa.Field(ge=0)
    n_pos: Series[int] = pa.Field(ge=0)
    mean_neg: Series[float] = pa.Field(nullable=True)
    sd_neg: Series[float] = pa.Field(nullable=True)
    mean_pos: Series[float] = pa.Field(nullable=True)
    sd_pos: Series[float] = pa.Field(nullable=True)
    z_prime: Series[float] = pa.Field(nullable=True, le=1)
    ssmd: Series[float] = pa.Field(nullable=True)
    note: Series[str]

    @pa.dataframe_check
    def nulls_have_note(cls, df: pd.DataFrame) -> pd.Series:
        """Every null estimate is explained in ``note``."""
        return nulls_explained(df, ["z_prime", "ssmd"])

    class Config:
        strict = True
        coerce = True


class FrameCounts(pa.DataFrameModel):
    """Cells per frame, per site and population (QC)."""

    plate: Series[str]
    well: Series[str]
    field: Series[str]
    population: Series[str]
    frame: Series[int] = pa.Field(ge=0)
    time_min: Series[float]
    n_cells: Series[int] = pa.Field(ge=0)

    class Config:
        strict = True
        coerce = True


class TrackLengths(pa.DataFrameModel):
    """One row per track: frames seen and duration (QC)."""

    plate: Series[str]
    well: Series[str]
    field: Series[str]
    population: Series[str]
    track_id: Series[int]
    n_frames: Series[int] = pa.Field(ge=1)
    duration_min: Series[float] = pa.Field(ge=0)

    class Config:
        strict = True
        coerce = True


class MissingSites(pa.DataFrameModel):
    """Sites of the sample sheet left out of the study tables, and why.

    A site is left out only when its sheet row says so (column ``exclude``,
    e.g. after its jobs failed under ``--keep-going``); it is never dropped
    silently. Empty when every site is in the tables.
    """

    site_id: Series[str] = pa.Field(unique=True)
    plate: Series[str]
    well: Series[str]
    field: Series[str]
    reason: Series[str] = pa.Field(str_length={"min_value": 1})

    class Config:
        strict = True
        coerce = True
