"""Segment stage: model resolution, bad input, streaming outputs, identity with Cellpose eval."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
import yaml

from livescreen.imageio import write_movie
from livescreen.segment import (
    EvalParams,
    SegmentationError,
    eval_params,
    fetch_builtin,
    resolve_model,
    segment_settings,
    segment_site,
)
from livescreen.segment import models as seg_models
from livescreen.segment.cellpose3 import configure_torch, load_model
from livescreen.segment.training import (
    average_precision,
    list_pairs,
    read_pairs,
    simulate_training_set,
    train_model,
    write_training_set,
)

REPO = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((REPO / "tests" / "config" / "config.yaml").read_text())
DEMO = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def _config(**segment):
    cfg = {k: v for k, v in CONFIG.items()}
    cfg["segment"] = {**(CONFIG.get("segment") or {}), **segment}
    return cfg


# -- model resolution and fetching ------------------------------------------------------------
def test_resolve_model_kinds(tmp_path):
    src = resolve_model("train", "target", "models")
    assert (src.kind, src.path) == ("train", str(Path("models/trained/target.pth")))
    src = resolve_model("nuclei", "effector", "models")
    assert (src.kind, src.path) == ("builtin", str(Path("models/nucleitorch_0")))
    f = tmp_path / "custom.pth"
    f.write_bytes(b"x")
    assert resolve_model(str(f), "target").kind == "path"


@pytest.mark.parametrize("spec", ["cyto7", "models/missing.pth", ""])
def test_resolve_model_rejects_unknown(spec):
    with pytest.raises(SegmentationError, match="model") as err:
        resolve_model(spec, "target")
    if spec:
        assert "cyto3" in str(err.value) and "train" in str(err.value)


def test_fetch_offline_says_what_to_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CELLPOSE_LOCAL_MODELS_PATH", raising=False)
    monkeypatch.setattr(seg_models, "MODEL_URL", "http://127.0.0.1:9/models")
    dest = tmp_path / "models" / "cyto3"
    with pytest.raises(SegmentationError) as err:
        fetch_builtin("cyto3", dest, timeout_s=5)
    msg = str(err.value)
    assert "http://127.0.0.1:9/models/cyto3" in msg and str(dest) in msg and "copy" in msg
    assert not dest.exists()


def test_fetch_copies_from_cellpose_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "nucleitorch_0").write_bytes(b"weights" * 10)
    monkeypatch.setenv("CELLPOSE_LOCAL_MODELS_PATH", str(cache))
    dest = tmp_path / "models" / "nucleitorch_0"
    fetch_builtin("nuclei", dest)
    assert dest.read_bytes() == b"weights" * 10
    with pytest.raises(SegmentationError, match="not a Cellpose 3 built-in"):
        fetch_builtin("cyto7", tmp_path / "x")


def test_load_model_bad_files(tmp_path):
    with pytest.raises(SegmentationError, match="does not exist"):
        load_model(tmp_path / "none.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(SegmentationError, match="not a PyTorch weights file"):
        load_model(bad)


def test_eval_params_units():
    cfg = _config(populations={"target": {"diameter_um": 13.0, "min_area_um2": 4.225,
                                          "min_edge_area_um2": 2.1125}})
    p = eval_params(cfg, "target")
    assert p.diameter_px == pytest.approx(13.0 / 0.65)
    assert p.min_size_px == 10
    assert p.min_edge_size_px == 5 and p.cellpose_min_size_px == 5
    assert eval_params(cfg, "effector").min_edge_size_px is None
    assert eval_params(cfg, "effector").cellpose_min_size_px == eval_params(
        cfg, "effector").min_size_px
    assert eval_params(cfg, "effector").diameter_px is None
    with pytest.raises(SegmentationError, match="population"):
        eval_params(cfg, "macrophage")
    with pytest.raises(SegmentationError, match="backend"):
        segment_settings(_config(backend="cellpose4"))


def test_average_precision_against_known_matches():
    truth = np.zeros((40, 40), np.uint32)
    truth[2:12, 2:12], truth[20:30, 20:30], truth[2:8, 30:36] = 1, 2, 5  # ids skip numbers
    pred = np.zeros_like(truth)
    pred[2:12, 3:12] = 7           # IoU 0.9 with truth 1 -> TP
    pred[20:24, 20:30] = 3         # IoU 0.4 with truth 2 -> FP, and truth 2 is missed
    pred[35:39, 35:39] = 4         # FP
    r = average_precision([truth], [pred])
    assert (r["tp"], r["fp"], r["fn"]) == (1, 2, 2)
    assert r["ap_mean"] == pytest.approx(1 / 5)
    assert average_precision([truth], [truth])["ap_mean"] == 1.0


# -- a small trained model shared by the tests below -------------------------------------------
@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A Cellpose net trained for a few seconds on simulated target frames (not accurate)."""
    configure_torch(2)
    imgs, masks = simulate_training_set(CONFIG["simulate"], CONFIG["imaging"], "target",
                                        "train", 2, 2)
    path = tmp_path_factory.mktemp("model") / "tiny.pth"
    train_model(imgs, masks, path, {"n_epochs": 12, "nimg_per_epoch": 8, "crop_px": 64})
    return path


@pytest.fixture(scope="module")
def site_movie(tmp_path_factory):
    """A simulated 6-frame site (128 x 128) with frame 2 blanked in every channel."""
    from livescreen.simulate import params_for_site, simulate_site

    sim = {**CONFIG["simulate"], "n_frames": 6}
    sample = {"plate": "P9", "well": "A01", "field": 1, "compound": "none", "dose": 0.0,
              "dose_unit": "uM"}
    site = simulate_site(params_for_site(sim, CONFIG["imaging"], sample), 11)
    movie = site.movie.copy()
    movie[2] = 0
    path = tmp_path_factory.mktemp("site") / "image.ome.tif"
    write_movie(path, movie, 0.65, 4.0)
    return path, movie, site.labels


@pytest.mark.parametrize("recover, join, edge", [(False, None, None), (True, None, None),
                                                 (True, 2.0, 5)])
def test_segment_equals_tuned_cellpose_eval(tiny_model, site_movie, recover, join, edge):
    """Batched, pipelined, untiled evaluation gives exactly CellposeModel.eval's masks
    (with ``recover_unassigned`` / ``join_rings_gap_px`` / ``min_edge_size_px``: both
    post-processed alike)."""
    _, movie, _ = site_movie
    backend = load_model(tiny_model)
    frames = [movie[t, 0] for t in (0, 1, 3, 4, 5)]
    # flow_threshold 0: the tiny model's flows are too rough for Cellpose's flow check,
    # which on some CPUs removes every mask and would leave nothing to compare
    params = EvalParams(diameter_px=None, batch_frames=2, cellprob_threshold=-1.0,
                        flow_threshold=0.0, recover_unassigned=recover,
                        join_rings_gap_px=join, min_edge_size_px=edge)
    ours = list(backend.segment(frames, params))
    ref = [backend.reference_eval(f, params) for f in frames]
    assert sum(int(m.max()) for m in ref) > 0, "the tiny model finds nothing: test is vacuous"
    from cellpose import models  # training must not switch Cellpose's normalisation off
    assert models.normalize_default["normalize"] is True
    for a, b in zip(ours, ref, strict=True):
        np.testing.assert_array_equal(a, b)
    backend.pipeline = False
    for a, b in zip(backend.segment(frames, params), ref, strict=True):
        np.testing.assert_array_equal(a, b)


def test_segment_site_outputs(tiny_model, site_movie, tmp_path):
    image, movie, _ = site_movie
    cfg = _config(populations={"target": {"cellprob_threshold": -1.0, "flow_threshold": 0.0,
                                          "min_area_um2": 5.0}},
                  batch_frames=2, montage_frames=3)
    out = {k: tmp_path / f"target_{k}" for k in ("labels.tif", "qc.parquet", "montage.png")}
    summary = segment_site(image, tiny_model, out["labels.tif"], out["qc.parquet"],
                           out["montage.png"], cfg, "target", threads=2)
    with tifffile.TiffFile(out["labels.tif"]) as tif:
        assert tif.series[0].axes == "TYX"
        assert tif.pages[0].compression != 1  # compressed
        labels = tif.asarray()
    assert labels.shape == movie[:, 0].shape and labels.dtype == np.uint32
    qc = pd.read_parquet(out["qc.parquet"])
    assert qc["frame"].tolist() == list(range(6))
    assert qc["time_min"].tolist() == [4.0 * t for t in range(6)]
    for t, lab in enumerate(labels):
        ids = np.unique(lab[lab > 0])
        assert ids.tolist() == list(range(1, len(ids) + 1))  # unique, 1..n per frame
        assert qc.loc[t, "n_objects"] == len(ids)
        if len(ids):
            areas = np.bincount(lab.ravel())[1:] * 0.65**2
            assert qc.loc[t, "area_um2_max"] == pytest.approx(areas.max())
    assert labels[2].max() == 0 and bool(qc.loc[2, "empty_input"])
    assert qc["n_objects"].sum() > 0 and summary["objects"] == qc["n_objects"].sum()
    png = out["montage.png"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    assert Image.open(io.BytesIO(png)).size[0] > 300


def test_segment_site_wrong_channel_count(tiny_model, tmp_path):
    movie = np.random.default_rng(0).integers(0, 500, (2, 2, 64, 64), dtype=np.uint16)
    write_movie(tmp_path / "two_channels.ome.tif", movie, 0.65, 4.0)
    cfg = _config()
    cfg["imaging"] = {**cfg["imaging"], "channels": {"target": 0, "effector": 2, "death": None}}
    with pytest.raises(SegmentationError, match=r"has 2 channel\(s\).*channels.effector = 2"):
        segment_site(tmp_path / "two_channels.ome.tif", tiny_model, tmp_path / "l.tif",
                     tmp_path / "q.parquet", tmp_path / "m.png", cfg, "effector")
    assert not (tmp_path / "l.tif").exists()


def test_segment_rejects_bad_frames(tiny_model):
    backend = load_model(tiny_model)
    with pytest.raises(SegmentationError, match="NaN"):
        list(backend.segment([np.full((64, 64), np.nan, np.float32)], EvalParams()))
    with pytest.raises(SegmentationError, match="differs"):
        list(backend.segment([np.ones((64, 64)) * np.arange(64), np.ones((32, 32))],
                             EvalParams(batch_frames=2)))
    assert np.array_equal(next(backend.segment([np.zeros((64, 64))], EvalParams())),
                          np.zeros((64, 64), np.uint32))


def test_training_pairs_roundtrip(tmp_path):
    imgs = [np.full((16, 16), 3, np.uint16)]
    masks = [np.zeros((16, 16), np.uint32)]
    masks[0][2:5, 2:5] = 9
    write_training_set(tmp_path, imgs, masks)
    pairs = list_pairs(tmp_path)
    assert [p.name for p in pairs[0]] == ["000_img.tif", "000_masks.tif"]
    i, m = read_pairs(pairs)
    assert m[0].max() == 1 and np.array_equal(i[0], imgs[0])  # renumbered
    (tmp_path / "empty").mkdir()
    with pytest.raises(SegmentationError, match="no annotated frames"):
        list_pairs(tmp_path / "empty")
    with pytest.raises(SegmentationError, match="does not exist"):
        list_pairs([{"image": str(tmp_path / "a.tif"), "mask": str(tmp_path / "b.tif")}])


@pytest.mark.parametrize("diam_mean_px, expected", [(None, 17.0), (30.0, 30.0)])
def test_fine_tuning_training_diameter(tiny_model, tmp_path, diam_mean_px, expected):
    """Fine-tuning keeps the initial model's training diameter unless diam_mean_px is set."""
    imgs, masks = simulate_training_set(CONFIG["simulate"], CONFIG["imaging"], "target",
                                        "train", 1, 1)
    out = tmp_path / "tuned.pth"
    train_model(imgs, masks, out, {"n_epochs": 2, "nimg_per_epoch": 2, "crop_px": 64,
                                   "initial_model": str(tiny_model),
                                   "diam_mean_px": diam_mean_px})
    assert float(load_model(tiny_model).model.diam_mean) == 17.0
    tuned = load_model(out).model
    assert float(tuned.diam_mean) == expected
    assert float(tuned.net.diam_mean.item()) == expected


@pytest.mark.parametrize("n_frames", [3, 4])
def test_segment_site_short_movies(tiny_model, tmp_path, n_frames):
    """3- and 4-frame stacks must not be written as RGB(A) images."""
    rng = np.random.default_rng(1)
    movie = rng.integers(100, 400, (n_frames, 3, 48, 48), dtype=np.uint16)
    write_movie(tmp_path / "short.ome.tif", movie, 0.65, 4.0)
    segment_site(tmp_path / "short.ome.tif", tiny_model, tmp_path / "l.tif",
                 tmp_path / "q.parquet", tmp_path / "m.png", _config(), "effector")
    with tifffile.TiffFile(tmp_path / "l.tif") as tif:
        assert tif.series[0].axes == "TYX"
        assert tif.asarray().shape == (n_frames, 48, 48)
        assert len(tif.pages) == n_frames
    assert len(pd.read_parquet(tmp_path / "q.parquet")) == n_frames
