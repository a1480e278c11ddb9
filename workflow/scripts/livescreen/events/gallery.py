"""Event gallery: PNG montages of example events for checking the calls by eye.

One PNG per event type; one row per example (a target at one site), one
column per frame around the event's onset. Each tile is a crop centred on the
target: target channel in green, effector channel in magenta (each scaled
between its 1st and 99.8th percentile), outlines of targets in green, of
effectors in magenta, the focal target in white and its host (cell-in-cell)
in orange. Examples are picked deterministically, spread over sites.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from os import PathLike

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

#: Event types with a gallery, and the fates/encounters rows that show them.
GALLERY_EVENTS = ("kill", "cell_in_cell", "evasion", "trogocytosis_only", "trogocytosis",
                  "died")

_GREEN = np.array([60, 255, 60], np.uint8)
_MAGENTA = np.array([255, 60, 255], np.uint8)
_WHITE = np.array([255, 255, 255], np.uint8)
_ORANGE = np.array([255, 160, 0], np.uint8)


def event_rows(encounters: pd.DataFrame, fates: pd.DataFrame, event: str) -> pd.DataFrame:
    """Examples of ``event`` at one site.

    Columns ``target_track_id, effector_track_id, host_track_id, onset_frame``
    (onsets as in :mod:`livescreen.events.validate`).
    """
    fate = fates.set_index("target_track_id") if len(fates) else fates
    rows = []
    if event in ("kill", "evasion", "trogocytosis_only", "trogocytosis"):
        sel = encounters["trogocytosis"] if event == "trogocytosis" else \
            encounters["outcome"] == event
        for e in encounters[sel].itertuples(index=False):
            onset = int(e.end_frame)
            if event == "kill":
                onset = int(fate.at[int(e.target_track_id), "death_frame"])
            elif event == "trogocytosis":
                onset = int(e.start_frame)
            rows.append((int(e.target_track_id), int(e.effector_track_id), 0, onset))
    else:
        outcome = "died" if event == "died" else "cell_in_cell"
        for f in fates[fates["outcome"] == outcome].itertuples(index=False):
            onset = int(f.death_frame) if event == "died" else int(f.internalization_frame)
            rows.append((int(f.target_track_id), int(f.effector_track_id),
                         int(f.host_track_id), onset))
    return pd.DataFrame(rows, columns=["target_track_id", "effector_track_id", "host_track_id",
                                       "onset_frame"])


def pick_examples(per_site: pd.DataFrame, n: int) -> pd.DataFrame:
    """Deterministically pick up to ``n`` rows spread over sites.

    Round robin over sorted sites, lowest target id first.
    """
    if per_site.empty:
        return per_site
    per_site = per_site.sort_values(["site", "target_track_id", "onset_frame"], kind="stable")
    per_site = per_site.assign(_rank=per_site.groupby("site").cumcount())
    return per_site.sort_values(["_rank", "site"], kind="stable").head(n).drop(columns="_rank")


def _scale(plane: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(plane, [1.0, 99.8])
    return np.clip((plane.astype(float) - lo) / max(hi - lo, 1e-6), 0, 1)


def _crop(arr: np.ndarray, cy: int, cx: int, half: int) -> np.ndarray:
    pad = [(half, half), (half, half)] + [(0, 0)] * (arr.ndim - 2)
    return np.pad(arr, pad)[cy:cy + 2 * half, cx:cx + 2 * half]


def tile(frame: np.ndarray, target: np.ndarray, effector: np.ndarray, channels: Mapping,
         focal: int, host: int, centre: tuple[int, int], half: int) -> np.ndarray:
    """One RGB crop (2*half, 2*half, 3) uint8 of a frame around ``centre``."""
    from skimage.segmentation import find_boundaries

    cy, cx = centre
    rgb = np.zeros((2 * half, 2 * half, 3), float)
    for role, colour in (("target", _GREEN), ("effector", _MAGENTA)):
        c = channels.get(role)
        if c is not None and c < frame.shape[0]:
            rgb += _crop(_scale(frame[c]), cy, cx, half)[..., None] * colour / 255.0
    rgb = (np.clip(rgb, 0, 1) * 200).astype(np.uint8)
    t, e = _crop(target, cy, cx, half), _crop(effector, cy, cx, half)
    rgb[find_boundaries(t, mode="inner")] = _GREEN
    rgb[find_boundaries(e, mode="inner")] = _MAGENTA
    if host:
        rgb[find_boundaries(t == host, mode="inner")] = _ORANGE
    rgb[find_boundaries(t == focal, mode="inner")] = _WHITE
    return rgb


def montage(examples: Sequence[dict], n_frames: int, crop_px: int, title: str,
            path: str | PathLike) -> None:
    """Write a montage PNG (atomically).

    Each example dict holds ``label`` (str), ``tiles`` (RGB arrays) and
    ``captions``; an empty list writes a 'no events of this type' image.
    """
    from PIL import Image, ImageDraw

    from livescreen.imageio import atomic_path

    tile_px, head, left = 2 * (crop_px // 2), 18, 150
    h = head + max(1, len(examples)) * (tile_px + 4)
    w = left + n_frames * (tile_px + 4)
    canvas = Image.new("RGB", (max(w, 320), h), (0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 2), title, fill=(255, 255, 255))
    if not examples:
        draw.text((4, head + 4), "no events of this type", fill=(200, 200, 200))
    for i, ex in enumerate(examples):
        y = head + i * (tile_px + 4)
        draw.text((4, y + 4), ex["label"], fill=(220, 220, 220))
        for j, (t_img, cap) in enumerate(zip(ex["tiles"], ex["captions"], strict=False)):
            x = left + j * (tile_px + 4)
            canvas.paste(Image.fromarray(t_img), (x, y))
            draw.text((x + 2, y + 2), cap, fill=(255, 255, 0))
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")


def example_tiles(movie, target_labels: np.ndarray, effector_labels: np.ndarray,
                  target_tracks: pd.DataFrame, channels: Mapping, example: Mapping,
                  n_frames: int, crop_px: int, frame_interval_min: float) -> dict:
    """Tiles of one example: ``n_frames`` frames centred on its onset (clipped to the movie)."""
    T = target_labels.shape[0]
    onset = int(example["onset_frame"])
    first = int(np.clip(onset - n_frames // 2, 0, max(0, T - n_frames)))
    frames = list(range(first, min(T, first + n_frames)))
    tr = target_tracks[target_tracks["track_id"] == int(example["target_track_id"])]
    tiles, caps = [], []
    for t in frames:
        row = tr.iloc[(tr["frame"] - t).abs().argsort()[:1]]
        cy = int(round(float(row["y_px"].iloc[0]))) if len(row) else T // 2
        cx = int(round(float(row["x_px"].iloc[0]))) if len(row) else T // 2
        img = movie.frame(t) if hasattr(movie, "frame") else np.asarray(movie[t])
        tiles.append(tile(img, target_labels[t], effector_labels[t], channels,
                          int(example["target_track_id"]), int(example["host_track_id"]),
                          (cy, cx), crop_px // 2))
        caps.append(f"{(t - onset) * frame_interval_min:+.0f} min")
    return {"tiles": tiles, "captions": caps}
