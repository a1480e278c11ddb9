"""Validation of event scoring against the simulator's ground truth.

Matching rule (docs/events.md):

1. **Tracks.** Predicted and true track ids differ. Per frame, every
   predicted mask is paired with the true mask of the same population it
   overlaps with IoU >= ``iou_min`` (at most one: IoU > 0.5 is unique); each
   predicted track maps to the true track it is paired with in most frames
   (0 = none, its events can only be false positives).
2. **Events.** True and predicted events of one type (:data:`EVENT_TYPES`)
   are paired when they concern the same true target (and, for ``encounter``
   and ``trogocytosis``, the same true effector) and their onsets differ by
   at most ``onset_tolerance`` frames; pairs are accepted greedily, smallest
   onset difference first, each event used once.
3. **Observability.** A true event whose phenotype falls outside the movie
   (a kill whose death frame is after the last frame, an internalisation
   after the last frame or too late to be seen sustained for
   ``cell_in_cell.min_duration_min``, e.g. in the movie's last frame, an
   evasion / nibbling whose target is not followed
   ``survive`` frames after the contact, nibbling of a censored encounter) is
   *not observable*: it is not counted as missed, and a prediction matched to
   it, or on the same target and of the same type, is not counted either.

Precision = TP / (TP + FP), recall = TP / (TP + FN), onset error = median
|predicted - true onset| (frames) over TP.

Command line: ``python -m livescreen.events.validate --help``.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from livescreen.features import label_overlaps

log = logging.getLogger(__name__)

#: Event types scored, with their onset definition (true and predicted alike).
EVENT_TYPES = {
    "encounter": "contact start frame",
    "kill": "death frame of the target (reporter plateau) after a contact",
    "cell_in_cell": "internalisation frame (sustained enclosure starts)",
    "evasion": "contact end frame of an encounter resolved as evasion",
    "trogocytosis_only": "contact end frame of an encounter resolved as nibbling only",
    "trogocytosis": "contact start frame of an encounter with nibbling (any outcome)",
    "died": "death frame of a never-contacted target",
}
_PAIR_KEYED = {"encounter", "trogocytosis"}
EVENT_COLUMNS = ["event", "target_track_id", "effector_track_id", "onset_frame", "observable"]


def frame_pairs(pred_labels: np.ndarray, true_labels: np.ndarray, iou_min: float = 0.5
                ) -> pd.DataFrame:
    """Per frame, predicted and true masks that overlap with IoU >= ``iou_min``.

    Parameters
    ----------
    pred_labels, true_labels : (T, Y, X) int arrays
        Predicted track-id labels and true labels (value = true track id).
    iou_min : float
        Smallest IoU for a pairing (>= 0.5: at most one partner each way).

    Returns
    -------
    pandas.DataFrame
        ``frame, pred_id, true_id``.
    """
    pred_labels, true_labels = np.asarray(pred_labels), np.asarray(true_labels)
    if pred_labels.shape != true_labels.shape:
        raise ValueError(f"label shapes differ: {pred_labels.shape} vs {true_labels.shape}")
    rows = []
    for t, (p, q) in enumerate(zip(pred_labels, true_labels, strict=False)):
        pid, tid, iou = label_overlaps(p, q)
        if not len(iou):
            continue
        ok = iou >= iou_min
        rows.append(pd.DataFrame({"frame": t, "pred_id": pid[ok], "true_id": tid[ok]}))
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=np.int64) for c in ("frame", "pred_id",
                                                                     "true_id")})
    return pd.concat(rows, ignore_index=True)


def _majority(pairs: pd.DataFrame) -> dict[int, int]:
    """Map each predicted id to the true id it pairs with in most frames (ties: lowest)."""
    if pairs.empty:
        return {}
    n = pairs.groupby(["pred_id", "true_id"]).size().rename("n").reset_index()
    n = n.sort_values(["pred_id", "n", "true_id"], ascending=[True, False, True])
    best = n.drop_duplicates("pred_id")
    return dict(zip(best["pred_id"].astype(int), best["true_id"].astype(int), strict=True))


def track_map(pred_labels: np.ndarray, true_labels: np.ndarray, iou_min: float = 0.5
              ) -> dict[int, int]:
    """Map predicted track ids to true track ids by per-frame mask IoU.

    Parameters
    ----------
    pred_labels, true_labels : (T, Y, X) int arrays
        Predicted track-id labels and true labels (value = true track id).
    iou_min : float
        Smallest IoU for a per-frame pairing.

    Returns
    -------
    dict
        predicted id -> true id, for predicted tracks paired in at least one frame.
    """
    return _majority(frame_pairs(pred_labels, true_labels, iou_min))


def contact_effector(pairs: pd.DataFrame, effector_id: int, start: int, end: int,
                     fallback: int) -> int:
    """True effector of a predicted contact: the one its masks pair with in most contact frames.

    Parameters
    ----------
    pairs : pandas.DataFrame
        Effector :func:`frame_pairs`.
    effector_id : int
        Predicted effector track id.
    start, end : int
        The contact's frames (inclusive).
    fallback : int
        Returned when the effector pairs with no true mask in those frames.
    """
    sel = pairs[(pairs["pred_id"] == effector_id) & (pairs["frame"] >= start)
                & (pairs["frame"] <= end)]
    return _majority(sel).get(int(effector_id), int(fallback))


def _frame(rows: list) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=EVENT_COLUMNS).astype(
        {"target_track_id": np.int64, "effector_track_id": np.int64, "onset_frame": np.int64,
         "observable": bool})


def truth_events(encounters: pd.DataFrame, fates: pd.DataFrame, n_frames: int,
                 survive_frames: int, cic_frames: int = 1) -> pd.DataFrame:
    """True events (:data:`EVENT_COLUMNS`) from the simulator's encounters and fates tables.

    Parameters
    ----------
    encounters, fates : pandas.DataFrame
        The simulator's truth tables.
    n_frames : int
        Movie length.
    survive_frames : int
        Frames a target must be followed after an evasion / nibbling contact
        for that outcome to be observable.
    cic_frames : int, optional
        Shortest sustained enclosure (frames): an internalisation later than
        ``n_frames - cic_frames`` cannot be seen sustained and is not
        observable.
    """
    last = n_frames - 1
    fate = fates.set_index("target_track_id")
    rows = []
    for e in encounters.itertuples(index=False):
        t, f = int(e.target_track_id), fate.loc[int(e.target_track_id)]
        rows.append(("encounter", t, int(e.effector_track_id), int(e.start_frame), True))
        followed = (int(f["last_frame"]) - int(e.end_frame) >= survive_frames
                    or str(f["end_reason"]) == "divided")
        if e.outcome == "kill":
            rows.append(("kill", t, int(e.effector_track_id), int(f["death_frame"]),
                         int(f["death_frame"]) >= 0))
        elif e.outcome in ("evasion", "trogocytosis_only"):
            rows.append((e.outcome, t, int(e.effector_track_id), int(e.end_frame), followed))
        if e.trogocytosis:
            rows.append(("trogocytosis", t, int(e.effector_track_id), int(e.start_frame),
                         e.outcome != "censored" and int(e.end_frame) < min(
                             last, int(f["last_frame"]))))
    for f in fates.itertuples(index=False):
        if f.outcome == "cell_in_cell":
            onset = int(f.internalization_frame)
            rows.append(("cell_in_cell", int(f.target_track_id), int(f.effector_track_id),
                         onset, 0 <= onset <= n_frames - max(1, cic_frames)))
        elif f.outcome == "died":
            rows.append(("died", int(f.target_track_id), 0, int(f.death_frame),
                         int(f.death_frame) >= 0))
    return _frame(rows)


def predicted_events(encounters: pd.DataFrame, fates: pd.DataFrame,
                     target_map: Mapping[int, int] | None = None,
                     effector_map: Mapping[int, int] | None = None,
                     effector_pairs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Predicted events from the events stage's tables, ids mapped to true ids.

    Parameters
    ----------
    encounters, fates : pandas.DataFrame
        ``events/encounters.parquet`` and ``events/fates.parquet``.
    target_map, effector_map : mapping, optional
        Predicted -> true track ids (:func:`track_map`); identity when None,
        unmapped ids become 0.
    effector_pairs : pandas.DataFrame, optional
        Effector :func:`frame_pairs`. When given, the true effector of an
        encounter is the one its predicted effector's masks pair with during
        the contact (:func:`contact_effector`; the encounter claims which cell
        touched the target then), else the whole track's (``effector_map``).
    """
    def tm(i):
        return int(i) if target_map is None else int(target_map.get(int(i), 0))

    def em(i):
        return int(i) if effector_map is None else int(effector_map.get(int(i), 0))

    fate = fates.set_index("target_track_id")
    rows = []
    for e in encounters.itertuples(index=False):
        t, ef = tm(e.target_track_id), em(e.effector_track_id)
        if effector_pairs is not None:
            ef = contact_effector(effector_pairs, int(e.effector_track_id), int(e.start_frame),
                                  int(e.end_frame), ef)
        rows.append(("encounter", t, ef, int(e.start_frame), True))
        if e.outcome == "kill":
            rows.append(("kill", t, ef, int(fate.at[int(e.target_track_id), "death_frame"]),
                         True))
        elif e.outcome in ("evasion", "trogocytosis_only"):
            rows.append((e.outcome, t, ef, int(e.end_frame), True))
        if e.trogocytosis:
            rows.append(("trogocytosis", t, ef, int(e.start_frame), True))
    for f in fates.itertuples(index=False):
        if f.outcome == "cell_in_cell":
            rows.append(("cell_in_cell", tm(f.target_track_id), em(f.effector_track_id),
                         int(f.internalization_frame), True))
        elif f.outcome == "died":
            rows.append(("died", tm(f.target_track_id), 0, int(f.death_frame), True))
    return _frame(rows)


def match_events(truth: pd.DataFrame, pred: pd.DataFrame, tolerance: int) -> pd.DataFrame:
    """Match events of each type; one row per true and per predicted event.

    Returns
    -------
    pandas.DataFrame
        ``event, status`` (tp | fn | fp | ignored), ``true_onset``,
        ``pred_onset``, ``target_track_id`` (true id), ``effector_track_id``.
    """
    out = []
    for ev in EVENT_TYPES:
        tr = truth[truth["event"] == ev].reset_index(drop=True)
        pr = pred[pred["event"] == ev].reset_index(drop=True)
        cands = []
        for i, t in tr.iterrows():
            same = pr["target_track_id"] == t["target_track_id"]
            if ev in _PAIR_KEYED:
                same &= pr["effector_track_id"] == t["effector_track_id"]
            for j in np.nonzero(same.to_numpy() & (pr["target_track_id"] > 0).to_numpy())[0]:
                d = abs(int(pr.at[j, "onset_frame"]) - int(t["onset_frame"]))
                if d <= tolerance or not t["observable"]:
                    cands.append((0 if t["observable"] else 1, d, i, j))
        used_t, used_p = set(), set()
        for _, _d, i, j in sorted(cands):
            if i in used_t or j in used_p:
                continue
            used_t.add(i)
            used_p.add(j)
            t = tr.loc[i]
            out.append((ev, "tp" if t["observable"] else "ignored", int(t["onset_frame"]),
                        int(pr.at[j, "onset_frame"]), int(t["target_track_id"]),
                        int(t["effector_track_id"])))
        hidden = set(tr.loc[~tr["observable"], "target_track_id"])
        for i, t in tr.iterrows():
            if i not in used_t:
                out.append((ev, "fn" if t["observable"] else "ignored", int(t["onset_frame"]),
                            -1, int(t["target_track_id"]), int(t["effector_track_id"])))
        for j, p in pr.iterrows():
            if j not in used_p:
                status = "ignored" if p["target_track_id"] in hidden else "fp"
                out.append((ev, status, -1, int(p["onset_frame"]), int(p["target_track_id"]),
                            int(p["effector_track_id"])))
    return pd.DataFrame(out, columns=["event", "status", "true_onset", "pred_onset",
                                      "target_track_id", "effector_track_id"])


def summarize(matches: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """Precision, recall and median onset error per event type (and ``by`` columns)."""
    keys = [*by, "event"]
    rows = []
    for key, g in matches.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        tp = int((g["status"] == "tp").sum())
        fp = int((g["status"] == "fp").sum())
        fn = int((g["status"] == "fn").sum())
        err = (g.loc[g["status"] == "tp", "pred_onset"]
               - g.loc[g["status"] == "tp", "true_onset"]).abs()
        rows.append({**dict(zip(keys, key, strict=True)), "n_true": tp + fn,
                     "n_pred": tp + fp, "tp": tp,
                     "fp": fp, "fn": fn, "ignored": int((g["status"] == "ignored").sum()),
                     "precision": tp / (tp + fp) if tp + fp else np.nan,
                     "recall": tp / (tp + fn) if tp + fn else np.nan,
                     "median_onset_error_frames": float(err.median()) if tp else np.nan})
    out = pd.DataFrame(rows)
    order = {e: i for i, e in enumerate(EVENT_TYPES)}
    return out.sort_values([*by, "event"], key=lambda s: s.map(order) if s.name == "event"
                           else s, kind="stable").reset_index(drop=True)


def validate_site(tables: Mapping[str, pd.DataFrame], truth: Mapping[str, pd.DataFrame],
                  pred_labels: Mapping[str, np.ndarray], true_labels: Mapping[str, np.ndarray],
                  *, n_frames: int, survive_frames: int, tolerance: int,
                  iou_min: float = 0.5, contact_effectors: bool = True,
                  cic_frames: int = 1) -> pd.DataFrame:
    """Match one site's predicted events to its true events (:func:`match_events` rows).

    Parameters
    ----------
    tables : mapping
        Predicted ``encounters`` and ``fates``.
    truth : mapping
        True ``encounters`` and ``fates`` (simulator).
    pred_labels, true_labels : mapping
        ``target`` / ``effector`` -> (T, Y, X) track-id labels.
    n_frames, survive_frames, tolerance : int
        Movie length, evasion survival window and onset tolerance in frames.
    iou_min : float
    contact_effectors : bool, optional
        Identify an encounter's effector by its masks during the contact
        (default) rather than by its whole track (:func:`predicted_events`).
    cic_frames : int, optional
        Shortest sustained enclosure in frames (:func:`truth_events`).
    """
    pairs = {pop: frame_pairs(pred_labels[pop], true_labels[pop], iou_min)
             for pop in ("target", "effector")}
    maps = {pop: _majority(p) for pop, p in pairs.items()}
    te = truth_events(truth["encounters"], truth["fates"], n_frames, survive_frames,
                      cic_frames)
    pe = predicted_events(tables["encounters"], tables["fates"], maps["target"],
                          maps["effector"], pairs["effector"] if contact_effectors else None)
    return match_events(te, pe, tolerance)


# ------------------------------------------------------------------ site runners and CLI


def read_truth(truth_dir) -> dict:
    """Truth tables, labels and movie length from a simulator truth directory."""
    import json
    from pathlib import Path

    import tifffile

    d = Path(truth_dir)
    return {"encounters": pd.read_parquet(d / "encounters.parquet"),
            "fates": pd.read_parquet(d / "fates.parquet"),
            "labels": {pop: tifffile.imread(d / f"labels_{pop}.tif")
                       for pop in ("target", "effector")},
            "n_frames": int(json.loads((d / "truth.json").read_text())["params"]["n_frames"])}


def validate_gt_labels(truth: Mapping, movie, *, imaging: Mapping, track_cfg: Mapping | None,
                       params, plate: str, well: str, field: str,
                       segmentation: Mapping[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Label path: labels -> track stage -> events stage -> matches.

    With the true labels (default) this isolates the events stage (and
    tracking) from segmentation errors; with ``segmentation`` (population ->
    (T, Y, X) label stack, e.g. the workflow's own Cellpose masks) it runs
    tracking and scoring as the workflow does, with the code as it is now.
    """
    from livescreen.events import score_labels, to_pixels_frames
    from livescreen.track import relabel_by_track, track_site
    from livescreen.track_models import tracking_params

    source = truth["labels"] if segmentation is None else segmentation
    tracks, labels = {}, {}
    for pop in ("target", "effector"):
        tracks[pop] = track_site(source[pop], movie,
                                 tracking_params(pop, (track_cfg or {}).get(pop)),
                                 imaging=imaging, plate=plate, well=well, field=field,
                                 population=pop)
        labels[pop] = relabel_by_track(source[pop], tracks[pop])
    out = score_labels(labels["target"], labels["effector"], movie, tracks["target"],
                       tracks["effector"], imaging=imaging, params=params, plate=plate,
                       well=well, field=field)
    grid = to_pixels_frames(params, imaging["pixel_size_um"], imaging["frame_interval_min"])
    labels["target"] = out["target_labels"]
    return validate_site(out, truth, labels, truth["labels"], n_frames=truth["n_frames"],
                         survive_frames=grid.survive_frames,
                         tolerance=int(round(params.validation.onset_tolerance_min
                                             / imaging["frame_interval_min"])),
                         iou_min=params.validation.iou_min,
                         cic_frames=grid.cic_min_frames)


def validate_outputs(events_dir, track_dir, truth: Mapping, *, imaging: Mapping,
                     params) -> pd.DataFrame:
    """Workflow path: a site's ``events/`` tables and labels vs truth."""
    from pathlib import Path

    import tifffile

    from livescreen.events import to_pixels_frames

    ev, tr = Path(events_dir), Path(track_dir)
    tables = {n: pd.read_parquet(ev / f"{n}.parquet") for n in ("encounters", "fates")}
    # Target ids as the scorer left them (inner/host swaps repaired), effectors as tracked.
    labels = {"target": tifffile.imread(ev / "target_labels.tif"),
              "effector": tifffile.imread(tr / "effector_track_labels.tif")}
    grid = to_pixels_frames(params, imaging["pixel_size_um"], imaging["frame_interval_min"])
    return validate_site(tables, truth, labels, truth["labels"], n_frames=truth["n_frames"],
                         survive_frames=grid.survive_frames,
                         tolerance=int(round(params.validation.onset_tolerance_min
                                             / imaging["frame_interval_min"])),
                         iou_min=params.validation.iou_min,
                         cic_frames=grid.cic_min_frames)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m livescreen.events.validate``: precision / recall / onset error per event type.

    ``--source gt`` (default) simulates the sites of the sample sheet (or reads
    their truth from ``resources/simulated``), tracks the true labels and
    scores them; ``--source workflow`` reads a finished workflow's
    ``results/sites/*/events`` and ``track`` outputs; ``--source segmentation``
    tracks and scores a finished workflow's own Cellpose label stacks
    (``results/sites/*/segment``) with the current tracking and scoring code.
    """
    import yaml

    from livescreen.events import event_params
    from livescreen.imageio import Movie
    from livescreen.simulate import params_for_site, simulate_site, site_seed

    ap = argparse.ArgumentParser(prog="python -m livescreen.events.validate",
                                 description=main.__doc__)
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--samples", default=None, help="sample sheet (default: the config's)")
    ap.add_argument("--source", choices=["gt", "workflow", "segmentation"], default="gt")
    ap.add_argument("--sites", type=int, default=None, help="only the first N sites")
    ap.add_argument("--results", default="results")
    ap.add_argument("--resources", default="resources/simulated")
    ap.add_argument("--out", default=None, help="write the per-event matches (Parquet)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    cfg = yaml.safe_load(open(args.config))
    sheet = pd.read_csv(args.samples or cfg["samples"], sep="\t", dtype=str)
    if args.sites:
        sheet = sheet.head(args.sites)
    params = event_params(cfg.get("events"))
    imaging = cfg["imaging"]
    from pathlib import Path

    parts = []
    for row in sheet.to_dict("records"):
        site = {k: str(row[k]) for k in ("plate", "well", "field")}
        tdir = Path(args.resources, site["plate"], site["well"], site["field"], "truth")
        sdir = Path(args.results, "sites", site["plate"], site["well"], site["field"])
        if args.source == "workflow":
            m = validate_outputs(sdir / "events", sdir / "track", read_truth(tdir),
                                 imaging=imaging, params=params)
        elif args.source == "segmentation":
            import tifffile

            seg = {pop: tifffile.imread(sdir / "segment" / f"{pop}_labels.tif")
                   for pop in ("target", "effector")}
            with Movie(tdir.parent / "image.ome.tif") as movie:
                m = validate_gt_labels(read_truth(tdir), movie, imaging=imaging,
                                       track_cfg=cfg.get("track"), params=params,
                                       segmentation=seg, **site)
        elif tdir.is_dir():
            with Movie(tdir.parent / "image.ome.tif") as movie:
                m = validate_gt_labels(read_truth(tdir), movie, imaging=imaging,
                                       track_cfg=cfg.get("track"), params=params, **site)
        else:
            row = {**row, "dose": float(row["dose"])}
            sim = simulate_site(params_for_site(cfg["simulate"], imaging, row),
                                site_seed(cfg["simulate"]["seed"], site["plate"], site["well"],
                                          site["field"]))
            truth = {"encounters": sim.encounters, "fates": sim.fates, "labels": sim.labels,
                     "n_frames": sim.movie.shape[0]}
            m = validate_gt_labels(truth, sim.movie, imaging=imaging,
                                   track_cfg=cfg.get("track"), params=params, **site)
        parts.append(m.assign(**site))
    matches = pd.concat(parts, ignore_index=True)
    summary = summarize(matches)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(f"source={args.source}, {len(parts)} sites")  # noqa: T201 (CLI output)
        print(summary.to_string(index=False,  # noqa: T201
                                float_format=lambda v: f"{v:.3f}"))
    if args.out:
        from livescreen.tables import write_table

        write_table(matches, args.out, None, {"source": args.source})
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
