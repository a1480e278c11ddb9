"""Ground-truth tables (tracks, encounters, fates, events) from a finished simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd

from livescreen.simulate.model import CAUSES, END_REASONS, FATE_OF_OUTCOME, GONE

TRACK_COLUMNS = ["population", "track_id", "frame", "time_min", "y_px", "x_px", "y_um", "x_um",
                 "area_px", "area_um2", "parent_track_id", "state", "contact_track_id",
                 "host_track_id", "death_reporter", "trogocytosis_signal"]
ENCOUNTER_COLUMNS = ["encounter_id", "target_track_id", "effector_track_id", "start_frame",
                     "end_frame", "start_min", "end_min", "duration_min", "outcome",
                     "censor_reason", "drawn_outcome", "trogocytosis",
                     "trogocytosis_area_fraction", "trogocytosis_signal", "host_track_id"]
FATE_COLUMNS = ["target_track_id", "parent_track_id", "first_frame", "last_frame", "contacted",
                "n_encounters", "first_contact_frame", "effector_track_id", "outcome",
                "censor_reason", "resolved_frame", "death_cause", "death_onset_frame",
                "death_frame", "time_to_death_min", "host_track_id", "engulfment_start_frame",
                "internalization_frame",
                "inner_survives", "divided", "end_reason"]
EVENT_COLUMNS = ["event", "population", "frame", "time_min", "track_id", "partner_track_id",
                 "detail"]


def tracks_table(site) -> pd.DataFrame:
    """One row per object per frame, both populations (targets first), sorted."""
    ps = site.ps
    cols = ["track_id", "frame", "time_min", "y_px", "x_px", "area_px", "parent_track_id",
            "state", "contact_track_id", "host_track_id", "death_reporter",
            "trogocytosis_signal", "agent"]
    parts = []
    for pop, rows in (("target", site.rows_t), ("effector", site.rows_e)):
        df = pd.DataFrame(rows, columns=cols)
        df.insert(0, "population", pop)
        parts.append(df)
    df = pd.concat(parts, ignore_index=True)
    df["y_um"] = df["y_px"] * ps
    df["x_um"] = df["x_px"] * ps
    df["area_um2"] = df["area_px"] * ps * ps
    df = df.astype({"track_id": "int64", "frame": "int64", "area_px": "int64",
                    "parent_track_id": "int64", "contact_track_id": "int64",
                    "host_track_id": "int64"})
    df = df.sort_values(["population", "track_id", "frame"],
                        key=lambda s: s.map({"target": 0, "effector": 1}) if s.name ==
                        "population" else s).reset_index(drop=True)
    return df[TRACK_COLUMNS]


def _effector_track_at(site, agent: int, frame: int) -> int:
    for seg in site.eff_segments:
        if seg["agent"] == agent and seg["first"] <= frame <= seg["last"]:
            return int(seg["track"])
    return 0


def encounters_table(site) -> pd.DataFrame:
    """One row per effector-target contact episode (bound stretch)."""
    tg, dt, T = site.tg, site.dt, site.T
    rows = []
    for en in site.enc:
        i = en["target"]
        start, planned = en["start"], en["planned_end"]
        first, last = tg["first_vis"][i], tg["last_vis"][i]
        eff = _effector_track_at(site, en["effector"], start)
        if tg["track"][i] == 0 or not first <= start <= last or eff == 0:
            site.qc["encounters_dropped"] += 1
            en["valid"] = False
            continue
        en["valid"] = True
        if planned > T - 1 and last >= T - 1:
            end, outcome, reason = T - 1, "censored", "movie_end"
        elif last < min(planned, T - 1):
            end, outcome, reason = last, "censored", "left_field"
        elif planned > T - 1:
            end, outcome, reason = T - 1, "censored", "movie_end"
        else:
            end, outcome, reason = planned, en["outcome"], "none"
        en["end"], en["final"], en["reason"] = end, outcome, reason
        host = en["host"]
        rows.append({
            "target_track_id": int(tg["track"][i]), "effector_track_id": eff,
            "start_frame": start, "end_frame": end, "start_min": start * dt,
            "end_min": end * dt, "duration_min": (end - start + 1) * dt, "outcome": outcome,
            "censor_reason": reason, "drawn_outcome": en["outcome"],
            "trogocytosis": bool(en["trog"] and end >= start),
            "trogocytosis_area_fraction": float(en.get("loss_done", 0.0)),
            "trogocytosis_signal": float(en.get("signal_done", 0.0)),
            "host_track_id": int(tg["track"][host]) if host >= 0 and outcome != "censored"
            else 0})
    df = pd.DataFrame(rows, columns=ENCOUNTER_COLUMNS[1:])
    df = df.sort_values(["start_frame", "target_track_id"]).reset_index(drop=True)
    df.insert(0, "encounter_id", np.arange(1, len(df) + 1, dtype=np.int64))
    return df.astype({c: "int64" for c in ("target_track_id", "effector_track_id",
                                             "start_frame", "end_frame", "host_track_id")})


def fates_table(site) -> pd.DataFrame:
    """One row per target track (call after :func:`encounters_table`)."""
    tg, dt = site.tg, site.dt
    rows = []
    for i in np.flatnonzero(tg["track"] > 0):
        first, last = int(tg["first_vis"][i]), int(tg["last_vis"][i])
        k = tg["enc"][i]
        en = site.enc[k] if k >= 0 and site.enc[k].get("valid") else None
        onset = int(tg["onset"][i])
        onset = onset if 0 <= onset <= last else -1
        death = int(tg["death_frame"][i])
        death = death if 0 <= death <= last else -1
        cause = CAUSES[tg["cause"][i]] if onset >= 0 else "none"
        internal = int(tg["internal_frame"][i])
        internal = internal if 0 <= internal <= last else -1
        hst = tg["inner_of"][i]
        cic_start = int(tg["cic_start"][i])
        outcome, reason, resolved, eff, first_contact = "uncontacted", "none", -1, 0, -1
        if en is not None:
            first_contact = int(en["start"])
            eff = _effector_track_at(site, en["effector"], en["start"])
            outcome = "censored" if en["final"] == "censored" else FATE_OF_OUTCOME[en["final"]]
            reason = en["reason"]
            resolved = int(en["end"]) if outcome != "censored" else -1
        elif cause == "spontaneous":
            outcome, resolved = "died", onset
        elif hst >= 0 and 0 <= cic_start <= last:
            outcome, resolved = "cell_in_cell", cic_start
        is_cic = outcome == "cell_in_cell"
        ttd = (death - first_contact) * dt if (death >= 0 and first_contact >= 0
                                               and outcome in ("killed", "cell_in_cell")) \
            else np.nan
        rows.append({
            "target_track_id": int(tg["track"][i]),
            "parent_track_id": site._parent_track(i),
            "first_frame": first, "last_frame": last, "contacted": en is not None,
            "n_encounters": int(en is not None), "first_contact_frame": first_contact,
            "effector_track_id": eff, "outcome": outcome, "censor_reason": reason,
            "resolved_frame": resolved, "death_cause": cause, "death_onset_frame": onset,
            "death_frame": death, "time_to_death_min": ttd,
            "host_track_id": int(tg["track"][hst]) if is_cic and hst >= 0 else 0,
            "engulfment_start_frame": cic_start if is_cic and 0 <= cic_start <= last else -1,
            "internalization_frame": internal if is_cic else -1,
            "inner_survives": (cause != "inner") if is_cic else pd.NA,
            "divided": END_REASONS[tg["end_reason"][i]] == "divided",
            "end_reason": END_REASONS[tg["end_reason"][i]] if tg["state"][i] == GONE
            and last < site.T - 1 else "movie_end"})
    df = pd.DataFrame(rows, columns=FATE_COLUMNS)
    df["inner_survives"] = df["inner_survives"].astype("boolean")
    df["time_to_death_min"] = df["time_to_death_min"].astype(float)
    return df.sort_values("target_track_id").reset_index(drop=True)


def events_table(site, tracks: pd.DataFrame, encounters: pd.DataFrame,
                 fates: pd.DataFrame) -> pd.DataFrame:
    """Long list of discrete events with frame and ids (see docs/simulator.md)."""
    dt, T = site.dt, site.T
    ev = []
    for r in encounters.itertuples(index=False):
        ev.append(("contact_start", "target", r.start_frame, r.target_track_id,
                   r.effector_track_id, ""))
        if r.censor_reason != "movie_end":
            ev.append(("contact_end", "target", r.end_frame, r.target_track_id,
                       r.effector_track_id, r.outcome))
        if r.trogocytosis:
            ev.append(("trogocytosis", "target", r.start_frame, r.target_track_id,
                       r.effector_track_id, f"{r.trogocytosis_area_fraction:.3f}"))
        if r.outcome == "evasion":
            ev.append(("evasion", "target", r.end_frame, r.target_track_id,
                       r.effector_track_id, ""))
    eff_of = dict(zip(fates["target_track_id"], fates["effector_track_id"], strict=True))
    for r in fates.itertuples(index=False):
        partner = eff_of[r.target_track_id] if r.death_cause == "kill" else (
            r.host_track_id if r.death_cause == "inner" else 0)
        if r.death_onset_frame >= 0:
            ev.append(("death_onset", "target", r.death_onset_frame, r.target_track_id,
                       partner, r.death_cause))
        if r.death_frame >= 0:
            ev.append(("death", "target", r.death_frame, r.target_track_id, partner,
                       r.death_cause))
        if r.engulfment_start_frame >= 0:
            ev.append(("engulfment_start", "target", r.engulfment_start_frame, r.target_track_id,
                       r.host_track_id, ""))
        if r.internalization_frame >= 0:
            ev.append(("internalization", "target", r.internalization_frame,
                       r.target_track_id, r.host_track_id, ""))
        if r.parent_track_id > 0:
            ev.append(("division", "target", r.first_frame, r.parent_track_id,
                       r.target_track_id, ""))
        if r.end_reason == "left_field":
            ev.append(("leave_field", "target", r.last_frame, r.target_track_id, 0, ""))
        elif r.first_frame > 0 and r.parent_track_id == 0:
            ev.append(("enter_field", "target", r.first_frame, r.target_track_id, 0, ""))
    for seg in site.eff_segments:
        if seg["last"] < T - 1:
            ev.append(("leave_field", "effector", seg["last"], seg["track"], 0, ""))
        if seg["first"] > 0:
            ev.append(("enter_field", "effector", seg["first"], seg["track"], 0, ""))
    df = pd.DataFrame(ev, columns=["event", "population", "frame", "track_id",
                                   "partner_track_id", "detail"])
    df.insert(3, "time_min", df["frame"] * dt)
    df = df.astype({"frame": "int64", "track_id": "int64", "partner_track_id": "int64"})
    return df.sort_values(["frame", "event", "population", "track_id", "partner_track_id"]
                          ).reset_index(drop=True)[EVENT_COLUMNS]


def incidental_contacts(labels: dict, encounters: pd.DataFrame) -> int:
    """Count effector-target label contacts that are not part of an encounter.

    A contact is a target pixel that overlaps or 8-touches an effector pixel in
    the same frame. The model keeps free effectors at a clearance from targets,
    so this should be (close to) zero; it is recorded in ``truth.json``.

    Parameters
    ----------
    labels : dict
        ``"target"`` and ``"effector"`` (T, Y, X) label stacks.
    encounters : pandas.DataFrame
        The encounters table.

    Returns
    -------
    int
        Number of (frame, target, effector) contacts outside encounters.
    """
    from scipy import ndimage

    active = set()
    for r in encounters.itertuples(index=False):
        for f in range(r.start_frame, r.end_frame + 1):
            active.add((f, r.target_track_id, r.effector_track_id))
    n = 0
    lt_all, le_all = labels["target"], labels["effector"]
    for f in range(lt_all.shape[0]):
        lt = lt_all[f]
        near = ndimage.maximum_filter(le_all[f], size=3)
        lo = ndimage.minimum_filter(np.where(le_all[f] > 0, le_all[f], np.uint32(2**32 - 1)),
                                    size=3)
        hit = lt > 0
        pairs = set()
        for eff in (near, lo):
            m = hit & (eff > 0) & (eff < 2**32 - 1)
            pairs |= set(zip(lt[m].tolist(), eff[m].tolist(), strict=True))
        n += sum((f, t, e) not in active for t, e in pairs)
    return n
