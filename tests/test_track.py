"""Tests of the track stage: btrack linking, features, table contract, napari, accuracy."""

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from livescreen.ctc import to_ctc, write_ctc
from livescreen.features import channel_names, object_features
from livescreen.track import (
    BtrackUnavailable,
    TracksTable,
    check_napari_tracks,
    new_tracker,
    relabel_by_track,
    relink,
    to_napari,
    track_site,
    write_tracks,
)
from livescreen.track_eval import ctc_scores, link_scores, synthetic_scene
from livescreen.track_models import btrack_config, tracking_params

IMAGING = {"pixel_size_um": 1.0, "frame_interval_min": 1.0,
           "channels": {"target": 0, "effector": 1, "death": None}}
SITE = {"plate": "P1", "well": "B02", "field": "1"}
REALDATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "realdata"


def run(labels, population="target", image=None, imaging=IMAGING, **over):
    return track_site(labels, image, tracking_params(population, over), imaging=imaging,
                      population=population, **SITE)


def disc_stack(centres, shape=(64, 64), radius=3):
    """(T, Y, X) labels with one disc per (t, y, x, label) tuple."""
    n_t = max(c[0] for c in centres) + 1 if centres else 1
    lab = np.zeros((n_t, *shape), np.uint32)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    for t, y, x, v in centres:
        lab[t][(yy - y) ** 2 + (xx - x) ** 2 <= radius**2] = v
    return lab


# ------------------------------------------------------------------ accuracy vs truth

@pytest.fixture(scope="module")
def dividing_scene():
    return synthetic_scene(n_cells=30, n_frames=30, shape=(160, 160), step_px=0.7,
                           p_divide=0.02, seed=1)


def test_targets_linked_and_divisions_found(dividing_scene, tmp_path):
    labels, truth = dividing_scene
    # the scene's daughters are discs as large as their mother (total area x2),
    # so the daughter-size checks are widened beyond their physical defaults
    table = run(labels, "target", max_speed_um_per_min=6, max_gap_min=5,
                division_area_change=1.5, division_max_daughter_share=None)
    s = link_scores(table, truth)
    assert s["n_divisions_true"] >= 10
    assert s["link_recall"] >= 0.97 and s["link_precision"] >= 0.97, s
    assert s["division_recall"] >= 0.6, s
    # CTC TRA with traccuracy on the same scene
    gt_masks, gt_lin = to_ctc(truth, labels)
    res_masks, res_lin = to_ctc(table, labels)
    write_ctc(tmp_path / "gt", gt_masks, gt_lin, "man_track.txt")
    write_ctc(tmp_path / "res", res_masks, res_lin)
    scores = ctc_scores(tmp_path / "gt", tmp_path / "res")
    assert scores["DET"] == pytest.approx(1.0)
    assert scores["TRA"] >= 0.95, scores
    # generation follows the lineage
    kids = table.drop_duplicates("track_id").query("parent_track_id > 0")
    gen = table.drop_duplicates("track_id").set_index("track_id")["generation"]
    assert (gen.loc[kids["track_id"]].to_numpy()
            == gen.loc[kids["parent_track_id"]].to_numpy() + 1).all()


def test_fast_effectors_linked_without_divisions():
    labels, truth = synthetic_scene(n_cells=15, n_frames=25, shape=(160, 160), step_px=3,
                                    persistence=0.7, seed=2)
    table = run(labels, "effector", max_speed_um_per_min=25, speed_um_per_min=8)
    s = link_scores(table, truth)
    assert s["link_recall"] >= 0.9, s
    assert (table["parent_track_id"] == 0).all()
    assert (table["generation"] == 0).all()


def test_link_scores_detect_swapped_tracks():
    # two cells; a tracker that swaps identities halfway must score below 1
    truth = pd.DataFrame({"track_id": [1, 1, 1, 2, 2, 2], "frame": [0, 1, 2] * 2,
                          "label_id": [1, 1, 1, 2, 2, 2], "parent_track_id": 0})
    swapped = truth.assign(track_id=[1, 1, 2, 2, 2, 1])
    assert link_scores(truth, truth)["link_recall"] == 1.0
    assert link_scores(swapped, truth)["link_recall"] == 0.5


# ------------------------------------------------------------------ btrack models

def test_physical_units_converted():
    p = tracking_params("effector", {"max_speed_um_per_min": 10, "max_gap_min": 9})
    cfg = btrack_config(p, pixel_size_um=0.5, frame_interval_min=3.0, shape_yx=(100, 200))
    assert cfg.max_search_radius == pytest.approx(10 * 3 / 0.5)
    assert cfg.motion_model.max_lost == 3
    assert "P_branch" not in cfg.hypothesis_model.hypotheses
    assert cfg.volume.x == (0.0, 200.0) and cfg.volume.y == (0.0, 100.0)
    t = btrack_config(tracking_params("target"), 0.5, 3.0, (100, 200))
    assert "P_branch" in t.hypothesis_model.hypotheses
    assert t.max_search_radius < cfg.max_search_radius


def test_defaults_differ_and_bad_settings_rejected():
    assert tracking_params("target").divisions and not tracking_params("effector").divisions
    assert (tracking_params("effector").max_speed_um_per_min
            > tracking_params("target").max_speed_um_per_min)
    with pytest.raises(ValueError):
        tracking_params("target", {"speed_um_per_min": 50})
    with pytest.raises(ValueError):
        tracking_params("target", {"max_speed_um_per_px": 3})
    with pytest.raises(ValueError):
        tracking_params("bystander")


def test_unloadable_btrack_core_points_to_build_script(monkeypatch):
    from btrack import libwrapper

    def broken():
        raise Exception("GLIBCXX_3.4.32 not found") from OSError("GLIBCXX_3.4.32 not found")

    monkeypatch.setattr(libwrapper, "get_library", broken)
    with pytest.raises(BtrackUnavailable, match="tools/build_btrack.py"):
        new_tracker()


# ------------------------------------------------------------------ features and table

def test_features_intensities_every_channel_and_border():
    lab = disc_stack([(0, 20, 20, 5), (0, 1, 40, 9)])
    img = np.zeros((1, 3, 64, 64), np.uint16)
    img[0, 0][lab[0] == 5] = 100
    img[0, 1][lab[0] == 9] = 7
    img[0, 2] = 3
    names = channel_names(3, IMAGING["channels"])
    assert names == ["target", "effector", "c2"]
    f = object_features(lab, img, names).set_index("label_id")
    assert f.loc[5, "intensity_mean_target"] == 100
    assert f.loc[9, "intensity_mean_effector"] == 7
    assert (f["intensity_mean_c2"] == 3).all()
    assert f.loc[5, "area_px"] == (lab[0] == 5).sum()
    assert not f.loc[5, "touches_border"] and f.loc[9, "touches_border"]


def test_table_physical_units_and_label_mapping(tmp_path):
    lab = disc_stack([(t, 20, 20 + 2 * t, 3 + t) for t in range(5)])
    img = np.ones((5, 2, 64, 64), np.uint16)
    imaging = {**IMAGING, "pixel_size_um": 0.5, "frame_interval_min": 4.0}
    table = run(lab, "target", image=img, imaging=imaging)
    assert table["track_id"].nunique() == 1
    assert table["time_min"].tolist() == [0, 4, 8, 12, 16]
    assert np.allclose(table["x_um"], table["x_px"] * 0.5)
    assert np.allclose(table["area_um2"], table["area_px"] * 0.25)
    assert table["label_id"].tolist() == [3, 4, 5, 6, 7]
    relab = relabel_by_track(lab, table)
    assert set(np.unique(relab)) == {0, int(table["track_id"].iloc[0])}
    assert ((relab > 0) == (lab > 0)).all()
    out = tmp_path / "t.parquet"
    write_tracks(table, out)
    back = pd.read_parquet(out)
    TracksTable.validate(back)
    pd.testing.assert_frame_equal(back, table, check_dtype=False)


# ------------------------------------------------------------------ awkward input

def test_no_objects_gives_empty_valid_table(tmp_path):
    table = run(np.zeros((4, 32, 32), np.uint32), image=np.zeros((4, 2, 32, 32), np.uint16))
    assert table.empty
    write_tracks(table, tmp_path / "e.parquet")
    assert pd.read_parquet(tmp_path / "e.parquet").empty


def test_single_frame_and_single_object():
    one_frame = disc_stack([(0, 10, 10, 1), (0, 40, 40, 2)])
    table = run(one_frame)
    assert sorted(table["track_id"]) == [1, 2]
    one = run(disc_stack([(0, 10, 10, 4)]))
    assert len(one) == 1 and one["label_id"].iloc[0] == 4


def test_empty_frames_bridged_or_split():
    # object missing in frame 2: bridged (gap 1 frame <= max_gap); frames 3..8 empty: new track
    cells = [(0, 30, 30, 1), (1, 30, 31, 1), (3, 30, 33, 1), (9, 30, 33, 1)]
    table = run(disc_stack(cells, radius=3), max_gap_min=3)
    by_frame = table.set_index("frame")["track_id"]
    assert by_frame[0] == by_frame[1] == by_frame[3]
    assert by_frame[9] != by_frame[3]


def test_huge_jump_starts_new_track():
    cells = [(t, 10, 10 + t, 1) for t in range(4)] + [(t, 50, 55, 1) for t in range(4, 8)]
    table = run(disc_stack(cells), max_speed_um_per_min=2)
    assert table["track_id"].nunique() == 2
    assert (table["parent_track_id"] == 0).all()


def test_shape_mismatch_gives_nan_intensities(caplog):
    lab = disc_stack([(t, 20, 20, 1) for t in range(3)])
    with caplog.at_level(logging.WARNING):
        wrong_xy = run(lab, image=np.ones((3, 2, 50, 50), np.uint16))
    assert wrong_xy["intensity_mean_target"].isna().all()
    assert "differ" in caplog.text
    short = run(lab, image=np.full((2, 2, 64, 64), 5, np.uint16))
    assert short["intensity_mean_target"].tolist()[:2] == [5, 5]
    assert np.isnan(short["intensity_mean_target"].iloc[2])


def test_inputs_not_modified():
    labels, _ = synthetic_scene(n_cells=5, n_frames=6, shape=(64, 64), seed=3)
    before = labels.copy()
    run(labels)
    assert np.array_equal(labels, before)


# ------------------------------------------------------------------ napari

def test_napari_tracks_round_trip(dividing_scene):
    from btrack.utils import napari_to_tracks

    labels, _ = dividing_scene
    table = run(labels, "target", max_speed_um_per_min=6, max_gap_min=5,   # daughters as
                division_area_change=1.5, division_max_daughter_share=None)  # big as mothers
    data, props, graph = to_napari(table)
    check_napari_tracks(data, graph)
    assert data.shape == (len(table), 4)
    assert len(graph) == (table.drop_duplicates("track_id")["parent_track_id"] > 0).sum() > 0
    # read back as napari data with btrack's reader: same tracks and lineage
    back = napari_to_tracks(data, {k: np.asarray(v, float) for k, v in props.items()}, graph)
    assert sorted(t.ID for t in back) == sorted(table["track_id"].unique())
    parents = table.drop_duplicates("track_id").set_index("track_id")["parent_track_id"]
    for trk in back:
        if trk.ID in graph:
            assert trk.parent == parents[trk.ID]
    with pytest.raises(ValueError, match="not found"):
        check_napari_tracks(data, {10**6: [1]})


# ------------------------------------------------------------------ real data

@pytest.mark.realdata
@pytest.mark.skipif(not (REALDATA / "ctc-Fluo-N2DH-GOWT1" / "01").is_dir(),
                    reason="../shared/realdata is absent")
def test_gowt1_tra():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "gowt1_tra", Path(__file__).resolve().parents[1] / "bench" / "gowt1_tra.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    table, scores, _ = mod.run(n_frames=40)
    assert scores["TRA"] >= 0.9, scores
    TracksTable.validate(table)


def _division_case(daughter_areas, mother_area=400):
    """Mother track 1 (frames 0-2) and daughters 2, 3, ... from frame 3."""
    rows = [(f, mother_area, 1) for f in range(3)]
    for k, a in enumerate(daughter_areas):
        rows += [(f, a, 2 + k) for f in range(3, 6)]
    feats = pd.DataFrame(rows, columns=["frame", "area_px", "track"])
    parents = {1: 0, **{2 + k: 1 for k in range(len(daughter_areas))}}
    return feats, feats["track"].to_numpy(np.int64), parents


@pytest.mark.parametrize("areas, kept", [
    ([230, 250], True),       # mitosis: halves adding up to about the mother (x1.2)
    ([390, 4], False),        # a 4-px fragment beside the cell
    ([400, 700], False),      # cell-in-cell: inner cell + host ring (x2.75)
    ([180, 170, 60], False),  # three "daughters"
    ([395], False),           # one daughter: the cell continues
])
def test_check_divisions_keeps_only_mitosis_like_splits(areas, kept):
    from livescreen.track import check_divisions

    feats, track_of, parents = _division_case(areas)
    new_of, new_par, n = check_divisions(feats, track_of, parents, 0.4, 0.5)
    assert (n == 0) is kept
    assert track_of.tolist() == feats["track"].tolist()   # input not modified
    if kept:
        assert new_par == parents and (new_of == track_of).all()
        return
    # the daughter most like the mother continues track 1; the others have no parent
    heir = 2 + int(np.argmin(np.abs(np.log(np.array(areas) / 400))))
    assert (new_of[track_of == heir] == 1).all()
    assert heir not in new_par
    assert all(new_par[2 + k] == 0 for k in range(len(areas)) if 2 + k != heir)


def test_check_divisions_daughter_share_and_length():
    """A "daughter" as big as the mother (a cell jumping into a host) or seen in one
    frame only (a flicker beside a cell) is not a division; a daughter born in the
    last frame cannot be seen twice and is kept. Neither gets an heir."""
    from livescreen.track import check_divisions

    feats, track_of, parents = _division_case([170, 330])   # sum 1.25, 330 = 0.83 x 400
    assert check_divisions(feats, track_of, parents, 0.4, 0.5)[2] == 0
    new_of, new_par, n = check_divisions(feats, track_of, parents, 0.4, 0.5,
                                         max_daughter_share=0.8)
    # no heir (the big "daughter" may be another cell): both start new tracks
    assert n == 1 and (new_of == track_of).all() and new_par[2] == new_par[3] == 0
    assert check_divisions(feats, track_of, parents, 0.4, 0.5, max_daughter_share=0.85)[2] == 0
    flicker = feats[~((feats["track"] == 3) & (feats["frame"] > 3))].reset_index(drop=True)
    of = flicker["track"].to_numpy(np.int64)
    assert check_divisions(flicker, of, parents, 0.4, 0.5)[2] == 0
    assert check_divisions(flicker, of, parents, 0.4, 0.5, min_daughter_frames=2)[2] == 1
    at_end = flicker[flicker["frame"] <= 3].reset_index(drop=True)   # daughters born last
    of = at_end["track"].to_numpy(np.int64)
    assert check_divisions(at_end, of, parents, 0.4, 0.5, min_daughter_frames=2)[2] == 0


def test_check_divisions_heir_only_within_the_tracker_gap():
    """An undone division's heir continues the mother only if it starts within the
    tracker's gap (demo C02: a cell's track was continued onto an unrelated cell
    that appeared 20 frames after the mother ended)."""
    from livescreen.track import check_divisions

    rows = [(f, 400, 1) for f in range(3)] + [(f, 395, 2) for f in range(23, 26)]
    feats = pd.DataFrame(rows, columns=["frame", "area_px", "track"])
    track_of = feats["track"].to_numpy(np.int64)
    new_of, new_par, n = check_divisions(feats, track_of, {1: 0, 2: 1}, 0.4, 0.5,
                                         max_gap_frames=3)
    assert n == 1 and new_par[2] == 0
    assert (new_of == track_of).all()  # no heir: both tracks keep their ids
    near = feats.assign(frame=np.where(feats["track"] == 2, feats["frame"] - 19, feats["frame"]))
    new_of, _, _ = check_divisions(near, track_of, {1: 0, 2: 1}, 0.4, 0.5, max_gap_frames=3)
    assert (new_of == 1).all()  # after a 1-frame gap the daughter continues the mother


# ------------------------------------------------------------------ brightness relinking

def _landing_movie(h_level=100.0, j_level=160.0, j_x=50, n_t=8, land=4, fade=None):
    """Host H at (40, 30) and cell J at (40, j_x); from frame ``land`` J sits where H was
    (H hidden under it, as an inner cell in its host's place): labels and movie."""
    shape = (80, 100)
    centres = [(t, 40, 30, 1) for t in range(n_t)] + [(t, 40, j_x, 2) for t in range(land)]
    labels = disc_stack(centres, shape, radius=6)
    movie = np.full((n_t, 2, *shape), 10.0, np.float32)
    for t in range(n_t):
        level = j_level if t >= land else h_level
        if fade is not None:
            level = h_level * (1 - fade) ** t
        movie[t, 0][labels[t] == 1] = level
        movie[t, 0][labels[t] == 2] = j_level
    return labels, movie


def _track_at(table, frame, x):
    row = table[(table["frame"] == frame) & ((table["x_px"] - x).abs() < 2)]
    return int(row["track_id"].iloc[0])


def test_inner_cell_landing_on_its_host_keeps_its_own_track(caplog):
    """The object at the host's place that has the jumping cell's brightness
    continues the jumping cell's track, not the host's (demo B05: true target 1
    moved into 16; the host's track went on with it and its cell-in-cell was missed)."""
    labels, movie = _landing_movie()
    with caplog.at_level(logging.INFO, logger="livescreen.track"):
        table = run(labels, "target", image=movie)
    j, h = _track_at(table, 0, 50), _track_at(table, 0, 30)
    assert j != h
    assert all(_track_at(table, t, 30) == j for t in range(4, 8))
    assert table.loc[table["track_id"] == h, "frame"].max() == 3
    assert "same brightness" in caplog.text
    # off: the tracker's link (by position) stands
    table = run(labels, "target", image=movie, relink_brightness_change=None)
    assert all(_track_at(table, t, 30) == _track_at(table, 0, 30) for t in range(8))


@pytest.mark.parametrize("case", ["small_change", "far", "fading"])
def test_brightness_relink_needs_a_clear_change_and_a_near_match(case):
    """No relink when the brightness changes by < 10 %, when the ended track is
    farther than ``relink_max_jump_um``, or when the host fades gradually (a dying
    cell's reporter, < 10 % per frame) even though its last level matches a neighbour."""
    kw = {"small_change": dict(h_level=150.0),
          "far": dict(j_x=62),                    # 32 px > 25 um at 1 um / px
          "fading": dict(h_level=200.0, j_level=120.0, fade=0.07)}[case]
    labels, movie = _landing_movie(**kw)
    table = run(labels, "target", image=movie)
    assert all(_track_at(table, t, 30) == _track_at(table, 0, 30) for t in range(8))


def test_relink_by_brightness_area_guard_and_inputs_untouched():
    """A fragment whose mean intensity happens to match is not a candidate
    (area ratio > ``max_area_ratio``); features and links are not modified."""
    from livescreen.track import relink_by_brightness

    rows = ([(f, 40.0, 30.0, 300, 100.0, 1) for f in range(4)]
            + [(f, 40.0, 30.0, 300, 160.0, 1) for f in range(4, 8)]
            + [(f, 40.0, 50.0, 300, 160.0, 2) for f in range(4)])
    feats = pd.DataFrame(rows, columns=["frame", "y_px", "x_px", "area_px",
                                        "intensity_mean_target", "track"])
    of = feats["track"].to_numpy(np.int64)
    before, of_before = feats.copy(), of.copy()
    new_of, parents, n = relink_by_brightness(feats, of, {1: 0, 2: 0}, "intensity_mean_target",
                                              0.1, 0.05, 25.0, 3)
    assert n == 1 and (new_of[(feats["frame"] >= 4).to_numpy()] == 2).all()
    assert parents == {1: 0, 2: 0}
    pd.testing.assert_frame_equal(feats, before)
    assert (of == of_before).all()
    frag = feats.assign(area_px=np.where(feats["track"] == 2, 40, feats["area_px"]))
    assert relink_by_brightness(frag, of, {1: 0, 2: 0}, "intensity_mean_target",
                                0.1, 0.05, 25.0, 3)[2] == 0
    # a track that ended by dividing is not a candidate
    assert relink_by_brightness(feats, of, {1: 0, 2: 0, 3: 2}, "intensity_mean_target",
                                0.1, 0.05, 25.0, 3)[2] == 0


def _piece_features(piece_area=80, born_level=102.0, born_frame=4):
    """Inner cell (track 1) at (40, 30), brightness 100, area 300, frames 0-3; from
    frame 4 track 1 goes on onto a host-ring piece (``piece_area``, brightness 160)
    while the inner cell, a little further in, is track 2, born at ``born_frame``."""
    rows = ([(f, 40.0, 30.0, 300, 100.0, 1) for f in range(4)]
            + [(f, 40.0, 40.0, piece_area, 160.0, 1) for f in range(4, 8)]
            + [(f, 40.0, 34.0, 280, born_level, 2) for f in range(born_frame, 8)])
    return pd.DataFrame(rows, columns=["frame", "y_px", "x_px", "area_px",
                                       "intensity_mean_target", "track"])


@pytest.mark.parametrize("parents", [{1: 0, 2: 0}, {1: 5, 2: 5}], ids=["orphan", "sister"])
def test_relink_by_brightness_gives_a_track_born_with_its_brightness_the_continuation(parents):
    """P4 C02 / P9 C03 (held-out, own masks): at internalisation the inner cell got
    a new id while its own id went on to a piece of its host's ring (brightness
    -25 %). The track born there with the inner cell's brightness and size takes
    the inner cell's id; the piece gets the new one, whether the tracker left the
    new track without a parent or called the break a division (sisters)."""
    from livescreen.track import relink_by_brightness

    feats = _piece_features()
    of = feats["track"].to_numpy(np.int64)
    new_of, new_parents, n = relink_by_brightness(feats, of, parents, "intensity_mean_target",
                                                  0.1, 0.05, 25.0, 3)
    inner = (feats["area_px"] >= 280).to_numpy()
    assert n == 1
    assert (new_of[inner] == 1).all() and (new_of[~inner] == 2).all()
    assert new_parents == parents
    assert (of == feats["track"].to_numpy()).all()      # input untouched


@pytest.mark.parametrize("case", ["born_later", "other_brightness", "other_parent",
                                  "no_piece"])
def test_relink_by_brightness_born_track_must_start_there_and_match(case):
    """No exchange with a track born a frame after the link, with a track whose
    brightness does not match the inner cell's, with another cell's daughter, or
    when the track went on to an object of its own size (a cell, not a piece:
    held-out P5 D02, where the track had taken the born cell's id a frame before)."""
    from livescreen.track import relink_by_brightness

    feats = {"born_later": _piece_features(born_frame=5),
             "other_brightness": _piece_features(born_level=125.0),
             "other_parent": _piece_features(),
             "no_piece": _piece_features(piece_area=250)}[case]
    parents = {1: 0, 2: 7} if case == "other_parent" else {1: 0, 2: 0}
    of = feats["track"].to_numpy(np.int64)
    assert relink_by_brightness(feats, of, parents, "intensity_mean_target",
                                0.1, 0.05, 25.0, 3)[2] == 0


def test_relink_clears_parents_that_do_not_end_before_their_child():
    """After ids were edited, a parent that lives on past its child's start is no
    parent; a grandchild's root and generation follow the cleared link."""
    rows = [(1, f, 0) for f in range(6)] + [(2, f, 1) for f in range(3, 6)] \
        + [(3, f, 2) for f in range(6, 8)] + [(4, f, 9) for f in range(2)] \
        + [(5, f, 4) for f in range(2, 4)]
    tracks = pd.DataFrame(rows, columns=["track_id", "frame", "parent_track_id"])
    tracks["root_track_id"], tracks["generation"] = 1, 2
    before = tracks.copy()
    out = relink(tracks)
    pd.testing.assert_frame_equal(tracks, before)
    lineage = out.groupby("track_id")[["parent_track_id", "root_track_id", "generation"]].first()
    assert lineage.loc[2].tolist() == [0, 2, 0]       # track 1 lives on from frame 3
    assert lineage.loc[3].tolist() == [2, 2, 1]       # track 2 ends at 5, 3 starts at 6
    assert lineage.loc[4].tolist() == [0, 4, 0]       # track 9 is not in the table
    assert lineage.loc[5].tolist() == [4, 4, 1]
    assert TracksTable.parents_exist(out)
