"""Table contracts of the events stage (pandera), checked before writing.

Vocabularies are those of the simulator's truth tables (docs/simulator.md),
so truth and prediction compare column by column. Columns: docs/events.md.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

ENCOUNTER_OUTCOMES = ["kill", "cell_in_cell", "evasion", "trogocytosis_only", "censored"]
FATE_OUTCOMES = ["killed", "cell_in_cell", "evaded", "nibbled", "uncontacted", "censored", "died",
                 "dead_at_start", "inner_piece"]
CENSOR_REASONS = ["none", "left_field", "movie_end", "next_encounter"]
END_REASONS = ["movie_end", "left_field", "divided", "faded", "hidden"]


class _Site(pa.DataFrameModel):
    plate: Series[str]
    well: Series[str]
    field: Series[str]

    class Config:
        strict = False
        coerce = True


class EncountersTable(_Site):
    """``events/encounters.parquet``: one row per effector-target contact episode."""

    encounter_id: Series[int] = pa.Field(gt=0)
    target_track_id: Series[int] = pa.Field(gt=0)
    effector_track_id: Series[int] = pa.Field(gt=0)
    start_frame: Series[int] = pa.Field(ge=0)
    end_frame: Series[int] = pa.Field(ge=0)
    start_min: Series[float] = pa.Field(ge=0)
    end_min: Series[float] = pa.Field(ge=0)
    duration_min: Series[float] = pa.Field(gt=0)
    contact_area_um2: Series[float] = pa.Field(ge=0)
    outcome: Series[str] = pa.Field(isin=ENCOUNTER_OUTCOMES)
    censor_reason: Series[str] = pa.Field(isin=CENSOR_REASONS)
    trogocytosis: Series[bool]
    effector_target_signal_gain: Series[float] = pa.Field(nullable=True)
    target_area_loss_fraction: Series[float] = pa.Field(nullable=True)
    host_track_id: Series[int] = pa.Field(ge=0)

    @pa.dataframe_check
    def _ordered(cls, df: pd.DataFrame) -> Series[bool]:
        return df["end_frame"] >= df["start_frame"]

    @pa.dataframe_check
    def _censor_consistent(cls, df: pd.DataFrame) -> Series[bool]:
        return (df["outcome"] == "censored") == (df["censor_reason"] != "none")


class FatesTable(_Site):
    """``events/fates.parquet``: one row per target track."""

    target_track_id: Series[int] = pa.Field(gt=0, unique=True)
    contacted: Series[bool]
    n_encounters: Series[int] = pa.Field(ge=0)
    first_contact_frame: Series[int] = pa.Field(ge=-1)
    first_contact_min: Series[float] = pa.Field(nullable=True)
    effector_track_id: Series[int] = pa.Field(ge=0)
    outcome: Series[str] = pa.Field(isin=FATE_OUTCOMES)
    censor_reason: Series[str] = pa.Field(isin=CENSOR_REASONS)
    death_frame: Series[int] = pa.Field(ge=-1)
    time_to_death_min: Series[float] = pa.Field(nullable=True)
    host_track_id: Series[int] = pa.Field(ge=0)
    internalization_frame: Series[int] = pa.Field(ge=-1)
    inner_survives: Series[pd.BooleanDtype] = pa.Field(nullable=True)
    divided: Series[bool]
    end_reason: Series[str] = pa.Field(isin=END_REASONS)

    @pa.dataframe_check
    def _contacted_consistent(cls, df: pd.DataFrame) -> Series[bool]:
        return df["contacted"] == (df["n_encounters"] > 0)


class EffectorsTable(_Site):
    """``events/effectors.parquet``: one row per effector track."""

    effector_track_id: Series[int] = pa.Field(gt=0, unique=True)
    n_contacts: Series[int] = pa.Field(ge=0)
    n_kills: Series[int] = pa.Field(ge=0)
    observed_min: Series[float] = pa.Field(gt=0)
    contacts_per_hour: Series[float] = pa.Field(ge=0)


def empty_like(model: type[pa.DataFrameModel]) -> pd.DataFrame:
    """An empty, schema-valid table of ``model`` with the right dtypes."""
    dtypes = {"bool": bool, "int64": "int64", "float64": float, "str": object}
    cols = {}
    for name, col in model.to_schema().columns.items():
        kind = str(col.dtype)
        cols[name] = pd.Series(dtype="boolean" if kind == "boolean" else dtypes.get(kind, object))
    return pd.DataFrame(cols)
