"""Per-well summary: outcome fractions among contacted, resolved targets.

Estimand (matches the simulator's outcome model, docs/simulator.md): among
targets that were contacted and whose decisive encounter resolved inside the
movie (fate killed, cell_in_cell, evaded or nibbled; ``censored`` excluded),
the fraction with each fate. Censoring is independent of the outcome, so this
fraction estimates the per-encounter outcome probability.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

WELL_KEYS = ["plate", "well"]
#: fraction column -> fate in ``fates.outcome``
FRACTIONS = {"frac_killed": "killed", "frac_cell_in_cell": "cell_in_cell",
             "frac_evaded": "evaded", "frac_nibbled": "nibbled"}
RESOLVED = tuple(FRACTIONS.values())
#: metric -> (human label with unit, denominator column in the wells table)
METRICS = {
    "frac_killed": ("killed (fraction of contacted, resolved targets)", "n_resolved"),
    "frac_cell_in_cell": ("cell-in-cell (fraction of contacted, resolved)", "n_resolved"),
    "frac_evaded": ("evaded (fraction of contacted, resolved)", "n_resolved"),
    "frac_nibbled": ("nibbled only (fraction of contacted, resolved)", "n_resolved"),
    "kill_rate_per_effector_h": ("kills per effector-hour (1/h)", "n_effectors"),
    "median_time_to_kill_min": ("median time from first contact to death (min)", "n_killed"),
}
DESIGN_COLUMNS = ["condition", "compound", "dose", "dose_unit", "role"]
_SITE_ONLY = {"site_id", "field", "image"}


def well_design(samples: pd.DataFrame) -> pd.DataFrame:
    """One row per well: design columns and free sheet columns constant in the well.

    Parameters
    ----------
    samples : pandas.DataFrame
        The sample sheet (one row per site).

    Returns
    -------
    pandas.DataFrame
        plate, well, n_sites, design columns, free columns (``mixed`` when
        sites of a well disagree).
    """
    s = samples.copy()
    s[WELL_KEYS] = s[WELL_KEYS].astype(str)
    cols = [c for c in s.columns if c not in _SITE_ONLY and c not in WELL_KEYS]
    grouped = s.groupby(WELL_KEYS, sort=True)
    out = grouped[cols].agg(lambda v: v.iloc[0] if v.nunique(dropna=False) == 1 else "mixed")
    out.insert(0, "n_sites", grouped.size())
    return out.reset_index()


def _counts(fates: pd.DataFrame) -> pd.DataFrame:
    f = fates.copy()
    f[WELL_KEYS] = f[WELL_KEYS].astype(str)
    contacted = f["contacted"].astype(bool)
    g = f.assign(
        _c=contacted,
        _res=contacted & f["outcome"].isin(RESOLVED),
        _cens=contacted & f["outcome"].eq("censored"),
        **{f"_n_{o}": contacted & f["outcome"].eq(o) for o in RESOLVED},
    ).groupby(WELL_KEYS)
    out = pd.DataFrame({
        "n_targets": g.size(), "n_contacted": g["_c"].sum(), "n_resolved": g["_res"].sum(),
        "n_censored": g["_cens"].sum(),
        **{f"n_{o}": g[f"_n_{o}"].sum() for o in RESOLVED}})
    killed = f[contacted & f["outcome"].eq("killed")]
    out["median_time_to_kill_min"] = killed.groupby(WELL_KEYS)["time_to_death_min"].median()
    return out.reset_index()


def _effector_counts(effectors: pd.DataFrame) -> pd.DataFrame:
    e = effectors.copy()
    e[WELL_KEYS] = e[WELL_KEYS].astype(str)
    return (e.groupby(WELL_KEYS).agg(n_effectors=("effector_track_id", "size"),
                                     effector_kills=("n_kills", "sum"),
                                     effector_min=("observed_min", "sum"))
            .reset_index())


def _note(row: pd.Series) -> str:
    notes = []
    if row["n_targets"] == 0:
        notes.append("no target tracks")
    if row["n_resolved"] == 0:
        notes.append("no contacted target with a resolved outcome: fractions undefined")
    if row["effector_hours"] == 0:
        notes.append("no effector observed: kill rate undefined")
    if row["n_killed"] == 0 and row["n_resolved"] > 0:
        notes.append("no killed target: median time to kill undefined")
    elif row["n_killed"] > 0 and pd.isna(row["median_time_to_kill_min"]):
        notes.append("killed targets died after the movie: median time to kill undefined")
    return "; ".join(notes)


def well_summary(fates: pd.DataFrame, effectors: pd.DataFrame,
                 samples: pd.DataFrame) -> pd.DataFrame:
    """Per-well counts, outcome fractions, kill rate and median time to kill.

    Parameters
    ----------
    fates : pandas.DataFrame
        Fates of all sites (``contacted``, ``outcome``, ``time_to_death_min``).
    effectors : pandas.DataFrame
        Effectors of all sites (``n_kills``, ``observed_min``).
    samples : pandas.DataFrame
        Sample sheet; every well of the sheet gets a row, even without cells.

    Returns
    -------
    pandas.DataFrame
        One row per well (columns documented in :class:`livescreen.stats.schemas.Wells`).
        Undefined values (zero denominators) are NaN and explained in ``note``.
    """
    design = well_design(samples)
    counts = _counts(fates) if len(fates) else pd.DataFrame(columns=WELL_KEYS)
    eff = _effector_counts(effectors) if len(effectors) else pd.DataFrame(columns=WELL_KEYS)
    out = design.merge(counts, on=WELL_KEYS, how="left").merge(eff, on=WELL_KEYS, how="left")
    int_cols = ["n_targets", "n_contacted", "n_resolved", "n_censored",
                *[f"n_{o}" for o in RESOLVED], "n_effectors", "effector_kills"]
    for c in int_cols:
        out[c] = out.get(c, pd.Series(0, index=out.index)).fillna(0).astype(int)
    out["effector_hours"] = out.get("effector_min", pd.Series(0.0, index=out.index)) \
        .fillna(0.0).astype(float) / 60.0
    out = out.drop(columns=["effector_min"], errors="ignore")
    if "median_time_to_kill_min" not in out:
        out["median_time_to_kill_min"] = np.nan
    out["median_time_to_kill_min"] = out["median_time_to_kill_min"].astype(float)
    n_res = out["n_resolved"].where(out["n_resolved"] > 0)
    for col, fate in FRACTIONS.items():
        out[col] = (out[f"n_{fate}"] / n_res).astype(float)
    hours = out["effector_hours"].where(out["effector_hours"] > 0)
    out["kill_rate_per_effector_h"] = (out["effector_kills"] / hours).astype(float)
    out["note"] = out.apply(_note, axis=1)
    return out.sort_values(WELL_KEYS, kind="stable").reset_index(drop=True)
