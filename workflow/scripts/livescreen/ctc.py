"""Cell Tracking Challenge (CTC) format: reading ground truth, writing results.

A CTC result is a folder with one label image per frame (``mask000.tif`` ...;
pixel value = track id) and ``res_track.txt`` with one line per track
``id start end parent``. A CTC track has a detection in every frame from
start to end, so a track with gaps is written as several CTC tracks, each
segment the parent of the next (the CTC convention for gaps).
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

LINEAGE_COLUMNS = ["track_id", "start", "end", "parent"]


def read_lineage(path: str | PathLike) -> pd.DataFrame:
    """Read a CTC ``man_track.txt`` / ``res_track.txt`` (id start end parent)."""
    df = pd.read_csv(path, sep=r"\s+", header=None, names=LINEAGE_COLUMNS, dtype=np.int64)
    return df


def to_ctc(tracks: pd.DataFrame, labels: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
    """Convert a tracks table and its label stack to CTC masks and lineage.

    Parameters
    ----------
    tracks : pandas.DataFrame
        Columns ``track_id``, ``frame``, ``label_id``, ``parent_track_id``.
    labels : (T, Y, X) array of int
        The label stack whose ``label_id`` values the table refers to.

    Returns
    -------
    masks : (T, Y, X) uint32 array
        Pixel value = CTC track id; objects not in ``tracks`` are 0.
    lineage : pandas.DataFrame
        ``track_id, start, end, parent`` (CTC ids; 0 = no parent). Tracks with
        gaps are split into consecutive segments linked as parent -> child.
    """
    from skimage.util import map_array

    labels = np.asarray(labels)
    df = tracks[["track_id", "frame", "label_id", "parent_track_id"]].sort_values(
        ["track_id", "frame"], kind="stable").reset_index(drop=True)
    if df.empty:
        return np.zeros(labels.shape, np.uint32), pd.DataFrame(columns=LINEAGE_COLUMNS,
                                                               dtype=np.int64)
    new_seg = (df["track_id"].diff() != 0) | (df["frame"].diff() != 1)
    df["ctc_id"] = np.cumsum(new_seg.to_numpy()).astype(np.int64)
    seg = df.groupby("ctc_id").agg(track_id=("track_id", "first"), start=("frame", "min"),
                                   end=("frame", "max"),
                                   parent_track=("parent_track_id", "first"))
    first_seg = seg.reset_index().groupby("track_id")["ctc_id"].min()
    last_seg = seg.reset_index().groupby("track_id")["ctc_id"].max()
    prev_same = seg["track_id"].shift(1) == seg["track_id"]
    parent = np.where(prev_same, seg.index.to_numpy() - 1, 0)
    is_first = ~prev_same.to_numpy()
    mother = seg["parent_track"].to_numpy()
    has_mother = is_first & (mother > 0) & np.isin(mother, last_seg.index)
    parent[has_mother] = last_seg.reindex(mother[has_mother]).to_numpy()
    del first_seg
    lineage = pd.DataFrame({"track_id": seg.index.to_numpy(np.int64),
                            "start": seg["start"].to_numpy(np.int64),
                            "end": seg["end"].to_numpy(np.int64),
                            "parent": parent.astype(np.int64)})
    masks = np.zeros(labels.shape, np.uint32)
    for t, grp in df.groupby("frame"):
        masks[int(t)] = map_array(labels[int(t)], grp["label_id"].to_numpy(labels.dtype),
                                  grp["ctc_id"].to_numpy(np.uint32))
    return masks, lineage


def write_ctc(folder: str | PathLike, masks: np.ndarray, lineage: pd.DataFrame,
              track_file: str = "res_track.txt") -> Path:
    """Write CTC masks (``mask%03d.tif``) and the lineage file into ``folder``."""
    import tifffile

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for t in range(masks.shape[0]):
        tifffile.imwrite(folder / f"mask{t:03d}.tif", masks[t].astype(np.uint16
                         if masks.max(initial=0) < 2**16 else np.uint32))
    lineage[LINEAGE_COLUMNS].to_csv(folder / track_file, sep=" ", header=False, index=False)
    return folder / track_file
