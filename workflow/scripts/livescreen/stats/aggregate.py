"""Combine per-site event tables into study tables joined with the sample sheet."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

SITE_KEYS = ["plate", "well", "field"]


def _site_keys_as_text(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for k in SITE_KEYS:
        if k in out.columns:
            out[k] = out[k].astype(str)
    return out


def combine_sites(tables: Iterable[pd.DataFrame], samples: pd.DataFrame) -> pd.DataFrame:
    """Concatenate per-site tables and join every sample-sheet column.

    Parameters
    ----------
    tables : iterable of pandas.DataFrame
        Per-site tables, each with ``plate``, ``well``, ``field`` columns
        (an empty site contributes no rows).
    samples : pandas.DataFrame
        The validated sample sheet (``results/tables/samples.parquet``).

    Returns
    -------
    pandas.DataFrame
        Rows of all sites with the sheet's columns appended (site keys as text).

    Raises
    ------
    ValueError
        If a row's site is not in the sample sheet.
    """
    tables = [_site_keys_as_text(t) for t in tables]
    sheet = _site_keys_as_text(samples)
    # Every site empty: keep the (typed) columns of the per-site tables.
    frames = [t for t in tables if len(t)] or tables[:1]
    if not frames:
        cols = list(dict.fromkeys([*SITE_KEYS, *sheet.columns]))
        return pd.DataFrame(columns=cols)
    data = pd.concat(frames, ignore_index=True)
    extra = [c for c in sheet.columns if c not in data.columns or c in SITE_KEYS]
    merged = data.merge(sheet[extra], on=SITE_KEYS, how="left", indicator=True,
                        validate="many_to_one")
    unknown = merged["_merge"] != "both"
    if unknown.any():
        bad = merged.loc[unknown, SITE_KEYS].drop_duplicates().astype(str).agg("/".join, axis=1)
        raise ValueError(f"sites not in the sample sheet: {', '.join(bad)}")
    return merged.drop(columns="_merge")


def follow_up(fates: pd.DataFrame, target_tracks: pd.DataFrame) -> pd.DataFrame:
    """Add each target's last observed time and follow-up since first contact.

    Parameters
    ----------
    fates : pandas.DataFrame
        Fates of one or more sites (``plate``, ``well``, ``field``, ``target_track_id``,
        ``first_contact_min``).
    target_tracks : pandas.DataFrame
        Target tracks (``plate``, ``well``, ``field``, ``track_id``, ``time_min``).

    Returns
    -------
    pandas.DataFrame
        ``fates`` plus ``last_seen_min`` (time of the track's last frame; NaN when
        the track is absent) and ``follow_up_min`` (last seen - first contact,
        NaN for uncontacted targets).
    """
    f = _site_keys_as_text(fates)
    t = _site_keys_as_text(target_tracks)
    last = (t.groupby([*SITE_KEYS, "track_id"], as_index=False)["time_min"].max()
            .rename(columns={"track_id": "target_track_id", "time_min": "last_seen_min"}))
    out = f.drop(columns=["last_seen_min", "follow_up_min"], errors="ignore").merge(
        last, on=[*SITE_KEYS, "target_track_id"], how="left")
    out["follow_up_min"] = (out["last_seen_min"] - out["first_contact_min"]).astype(float)
    return out


def effectors_from_encounters(encounters: pd.DataFrame, effector_tracks: pd.DataFrame,
                              frame_interval_min: float) -> pd.DataFrame:
    """Per-effector contacts, kills and observed time (the ``effectors`` contract).

    Used for simulator truth tables, which have no effector table.

    Parameters
    ----------
    encounters : pandas.DataFrame
        Encounters of one or more sites.
    effector_tracks : pandas.DataFrame
        Effector tracks (``plate``, ``well``, ``field``, ``track_id``, ``frame``).
    frame_interval_min : float
        Minutes per frame; observed time = frames seen x interval.

    Returns
    -------
    pandas.DataFrame
        plate, well, field, effector_track_id, n_contacts, n_kills, observed_min,
        contacts_per_hour.
    """
    tr = _site_keys_as_text(effector_tracks)
    obs = (tr.groupby([*SITE_KEYS, "track_id"], as_index=False)["frame"].nunique()
           .rename(columns={"track_id": "effector_track_id", "frame": "n_frames"}))
    obs["observed_min"] = obs.pop("n_frames") * float(frame_interval_min)
    enc = _site_keys_as_text(encounters)
    counts = (enc.assign(kill=enc["outcome"].eq("kill"))
              .groupby([*SITE_KEYS, "effector_track_id"], as_index=False)
              .agg(n_contacts=("encounter_id", "size"), n_kills=("kill", "sum")))
    out = obs.merge(counts, on=[*SITE_KEYS, "effector_track_id"], how="left")
    out[["n_contacts", "n_kills"]] = out[["n_contacts", "n_kills"]].fillna(0).astype(int)
    out["contacts_per_hour"] = out["n_contacts"] / (out["observed_min"] / 60.0)
    return out[[*SITE_KEYS, "effector_track_id", "n_contacts", "n_kills", "observed_min",
                "contacts_per_hour"]]


def qc_tables(tracks: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cells per frame and track lengths, for the QC figure.

    Parameters
    ----------
    tracks : pandas.DataFrame
        Tracks of all sites and populations (``population``, ``track_id``,
        ``frame``, ``time_min`` and site keys).

    Returns
    -------
    per_frame : pandas.DataFrame
        plate, well, field, population, frame, time_min, n_cells.
    lengths : pandas.DataFrame
        plate, well, field, population, track_id, n_frames, duration_min.
    """
    tr = _site_keys_as_text(tracks)
    keys = [*SITE_KEYS, "population"]
    per_frame = (tr.groupby([*keys, "frame"], as_index=False)
                 .agg(time_min=("time_min", "first"), n_cells=("track_id", "nunique")))
    lengths = (tr.groupby([*keys, "track_id"], as_index=False)
               .agg(n_frames=("frame", "nunique"), t0=("time_min", "min"), t1=("time_min", "max")))
    step = float(np.nanmedian(np.diff(np.sort(tr["time_min"].unique())))) if len(tr) > 1 else 0.0
    lengths["duration_min"] = lengths.pop("t1") - lengths.pop("t0") + step
    per_frame["n_cells"] = per_frame["n_cells"].astype(int)
    lengths["n_frames"] = lengths["n_frames"].astype(int)
    return per_frame, lengths
