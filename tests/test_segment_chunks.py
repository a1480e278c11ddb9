"""Segmentation of long movies split into frame ranges (segment.frames_per_job).

A movie segmented in pieces (rule segment_chunk, one job per frame range) and
joined (rule merge_segment_chunks) must give the label stack and QC table one
job over the whole movie gives: segmentation is per frame.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import tifffile

from conftest import load_yaml, run_snakemake, save_yaml
from livescreen.segment import chunk_ranges


@pytest.mark.parametrize(("n", "step", "expected"), [
    (10, 4, [(0, 4), (4, 8), (8, 10)]),
    (8, 4, [(0, 4), (4, 8)]),
    (3, 10, [(0, 3)]),
    (7, None, [(0, 7)]),
    (1, 1, [(0, 1)]),
])
def test_chunk_ranges_cover_every_frame_once(n, step, expected):
    ranges = chunk_ranges(n, step)
    assert ranges == expected
    assert [t for a, b in ranges for t in range(a, b)] == list(range(n))


def test_chunk_ranges_reject_bad_sizes():
    with pytest.raises(ValueError, match="frames_per_job"):
        chunk_ranges(10, -2)
    with pytest.raises(ValueError, match="n_frames"):
        chunk_ranges(-1, 4)


def _jobs(stdout: str) -> dict:
    return {ln.split()[0]: int(ln.split()[1]) for ln in stdout.splitlines()
            if len(ln.split()) == 2 and ln.split()[1].isdigit() and ln.split()[0] != "total"}


@pytest.mark.workflow
def test_movie_split_into_frame_ranges_gives_the_one_job_labels(finished_run, tmp_path):
    work = tmp_path / "run"
    shutil.copytree(finished_run, work, ignore=shutil.ignore_patterns(".snakemake", "report*"))
    cfg = load_yaml(work / "config.yaml")
    n_frames = int(cfg["simulate"]["n_frames"])
    # a multiple of batch_frames: every network batch is the same as in one job
    cfg["segment"]["frames_per_job"] = 2 * int(cfg["segment"]["batch_frames"])
    save_yaml(work / "config_chunks.yaml", cfg)
    site = pd.read_csv(work / "samples.tsv", sep="\t", dtype=str).iloc[0]
    seg = work / "results" / "sites" / site.plate / site.well / site.field / "segment"
    one_job = tifffile.imread(seg / "target_labels.tif")
    one_job_qc = pd.read_parquet(seg / "target_qc.parquet")
    for name in ("target_labels.tif", "target_qc.parquet", "target_montage.png"):
        (seg / name).unlink()
    target = str((seg / "target_labels.tif").relative_to(work))

    res = run_snakemake(work, target, "-n", "--quiet", "rules", "--configfile",
                        "config_chunks.yaml")
    assert res.returncode == 0, res.stderr[-3000:]
    n_pieces = len(chunk_ranges(n_frames, cfg["segment"]["frames_per_job"]))
    assert n_pieces > 1
    assert _jobs(res.stdout + res.stderr) == {"segment_chunk": n_pieces,
                                              "merge_segment_chunks": 1}

    res = run_snakemake(work, target, "--cores", "2", "--configfile", "config_chunks.yaml",
                        timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    merged = tifffile.imread(seg / "target_labels.tif")
    assert merged.shape == one_job.shape == (n_frames, *one_job.shape[1:])
    assert np.array_equal(merged, one_job)
    qc = pd.read_parquet(seg / "target_qc.parquet")
    pd.testing.assert_frame_equal(qc.reset_index(drop=True), one_job_qc.reset_index(drop=True))
    assert (seg / "target_montage.png").stat().st_size > 0
    assert not list((seg / "chunks").glob("*")), "pieces are temporary"
