"""Tests of livescreen.simulate against its own ground truth and configured rates."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
import yaml
from scipy import ndimage

from livescreen.simulate import (
    TRUTH_FILES,
    hill,
    outcome_probabilities,
    params_for_site,
    simulate_site,
    site_seed,
    write_site,
)
from livescreen.simulate.model import carry_label

ROOT = Path(__file__).resolve().parents[1]
DEMO = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
IMAGING = DEMO["imaging"]

CONTROL = {"plate": "P1", "well": "B02", "field": "1", "condition": "control",
           "compound": "none", "dose": 0.0, "dose_unit": "uM", "role": "negative_control"}
INHIB = {**CONTROL, "well": "B05", "condition": "inh_10uM", "compound": "CICi", "dose": 10.0,
         "role": "sample"}
STAURO = {**CONTROL, "well": "B06", "condition": "staurosporine", "compound": "staurosporine",
          "dose": 1.0, "role": "positive_control"}


def small_cfg(**over):
    """The demo's simulate section at a small, fast size (plus overrides)."""
    cfg = {**DEMO["simulate"], "n_frames": 12, "height_px": 128, "width_px": 128}
    cfg["effectors"] = {**cfg["effectors"], "density_per_mm2": 900.0}
    cfg["contact"] = {**cfg["contact"], "duration_median_min": 10.0}
    cfg.update(over)
    return cfg


# A medium site with many events, shared by the structural tests.
MEDIUM = small_cfg(n_frames=30, height_px=176, width_px=176)
MEDIUM["targets"] = {**MEDIUM["targets"], "division_rate_per_h": 0.3}


@pytest.fixture(scope="module")
def medium_sites():
    sites = []
    for k, sample in enumerate((CONTROL, INHIB)):
        params = params_for_site(MEDIUM, IMAGING, sample)
        sites.append(simulate_site(params, seed=100 + k))
    return sites


# Many small sites per condition for the rates test (fast: short contacts, dense effectors).
RATES = small_cfg(n_frames=16, height_px=192, width_px=192)
RATES["effectors"] = {**RATES["effectors"], "density_per_mm2": 1500.0}
RATES["contact"] = {**RATES["contact"], "duration_median_min": 8.0, "duration_sigma_log": 0.2}
N_RATE_SITES = 10


@pytest.fixture(scope="module")
def rate_sites():
    out = {}
    for name, sample in (("control", CONTROL), ("inhibitor", INHIB)):
        params = params_for_site(RATES, IMAGING, sample)
        out[name] = [simulate_site(params, seed=site_seed(1, "R", name, k))
                     for k in range(N_RATE_SITES)]
    return out


# ----------------------------------------------------------------- parameters
def test_hill_and_probabilities():
    assert hill(0.0, 1.0, 1.0) == 0.0
    assert hill(1.0, 1.0, 2.0) == pytest.approx(0.5)
    assert hill(10.0, 1.0, 1.0) == pytest.approx(10 / 11)
    base = DEMO["simulate"]["outcomes"]["baseline"]
    probs, f = outcome_probabilities(base, {}, 5.0)
    assert f == 0.0 and probs == pytest.approx(base)
    cici = DEMO["simulate"]["compounds"]["CICi"]
    probs, f = outcome_probabilities(base, cici, 1.0)
    assert f == pytest.approx(0.5)
    assert probs["kill"] == pytest.approx(base["kill"] + (cici["kill_max"] - base["kill"]) / 2)
    assert probs["cell_in_cell"] == pytest.approx(
        base["cell_in_cell"] + (cici["cell_in_cell_max"] - base["cell_in_cell"]) / 2)
    assert sum(probs.values()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="sum to 1"):
        outcome_probabilities({**base, "kill": 0.9}, {}, 0.0)
    with pytest.raises(ValueError, match="out of"):
        outcome_probabilities(base, {"ec50_um": 1, "hill": 1, "kill_max": 0.9,
                                     "cell_in_cell_max": 0.5}, 100.0)


def test_params_for_site_dose_units_and_compounds():
    cfg = DEMO["simulate"]
    p_um = params_for_site(cfg, IMAGING, {**INHIB, "dose": 1.0})
    p_nm = params_for_site(cfg, IMAGING, {**INHIB, "dose": 1000.0, "dose_unit": "nM"})
    assert p_um.dose_um == pytest.approx(1.0) and p_nm.dose_um == pytest.approx(1.0)
    assert p_um.outcome_probs == pytest.approx(p_nm.outcome_probs)
    ctrl = params_for_site(cfg, IMAGING, CONTROL)
    assert ctrl.outcome_probs == pytest.approx(cfg["outcomes"]["baseline"])
    stau = params_for_site(cfg, IMAGING, STAURO)
    assert stau.outcome_probs["kill"] > 0.9
    assert stau.spontaneous_death_per_h > ctrl.spontaneous_death_per_h
    assert ctrl.channels == ("target", "effector", "death")
    two = params_for_site(cfg, {**IMAGING, "channels": {"target": 0, "effector": 1,
                                                        "death": None}}, CONTROL)
    assert two.channels == ("target", "effector")
    with pytest.raises(ValueError, match="no entry under simulate.compounds"):
        params_for_site(cfg, IMAGING, {**CONTROL, "compound": "aspirin", "dose": 1.0})
    rates = p_um.truth_rates()
    assert rates["p_kill"] == pytest.approx(p_um.outcome_probs["kill"])


def test_site_seed_is_stable_and_distinct():
    assert site_seed(5, "P1", "B02", 1) == site_seed(5, "P1", "B02", "1")
    seeds = {site_seed(5, "P1", w, 1) for w in ("B02", "B03", "C02")} | {site_seed(6, "P1",
                                                                                 "B02", 1)}
    assert len(seeds) == 4
    # pinned: changing the derivation would silently change every simulated study
    assert site_seed(20261123, "P1", "B02", 1) == 8415773904719780650


# ---------------------------------------------------------------- determinism
def test_determinism():
    params = params_for_site(small_cfg(), IMAGING, CONTROL)
    a, b = simulate_site(params, 3), simulate_site(params, 3)
    np.testing.assert_array_equal(a.movie, b.movie)
    for pop in ("target", "effector"):
        np.testing.assert_array_equal(a.labels[pop], b.labels[pop])
    for name in ("tracks", "encounters", "fates", "events"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    c = simulate_site(params, 4)
    assert not np.array_equal(a.movie, c.movie)
    assert not np.array_equal(a.labels["target"], c.labels["target"])


def test_movie_shape_dtype_and_two_channel_variant():
    params = params_for_site(small_cfg(), IMAGING, CONTROL)
    site = simulate_site(params, 1)
    assert site.movie.shape == (12, 3, 128, 128) and site.movie.dtype == np.uint16
    assert site.labels["target"].dtype == np.uint32
    assert site.labels["target"].shape == (12, 128, 128)
    two = params_for_site(small_cfg(), {**IMAGING, "channels": {"target": 0, "effector": 1,
                                                                "death": None}}, CONTROL)
    assert simulate_site(two, 1).movie.shape == (12, 2, 128, 128)


# --------------------------------------------------------------------- output
def test_write_site_files(tmp_path):
    params = params_for_site(small_cfg(), IMAGING, CONTROL)
    site = simulate_site(params, 2)
    image = tmp_path / "P1" / "image.ome.tif"
    truth = tmp_path / "P1" / "truth"
    write_site(site, image, truth, IMAGING)
    with tifffile.TiffFile(image) as tif:
        series = tif.series[0]
        assert series.axes == "TCYX"
        assert series.shape == site.movie.shape and series.dtype == np.uint16
        np.testing.assert_array_equal(series.asarray(), site.movie)
        ome = tif.ome_metadata
        assert 'PhysicalSizeX="0.65"' in ome and 'PhysicalSizeY="0.65"' in ome
        assert 'TimeIncrement="4.0"' in ome and 'TimeIncrementUnit="min"' in ome
        assert tif.pages[0].compression == tifffile.COMPRESSION.ADOBE_DEFLATE
    for pop in ("target", "effector"):
        lab = tifffile.imread(truth / f"labels_{pop}.tif")
        assert lab.dtype == np.uint32
        np.testing.assert_array_equal(lab, site.labels[pop])
    for name in ("tracks", "encounters", "fates", "events"):
        back = pd.read_parquet(truth / f"{name}.parquet")
        pd.testing.assert_frame_equal(back, getattr(site, name), check_dtype=False)
    record = json.loads((truth / "truth.json").read_text())
    assert record["seed"] == 2
    assert record["truth_rates"]["p_kill"] == pytest.approx(params.outcome_probs["kill"])
    assert sorted(p.name for p in truth.iterdir()) == sorted(TRUTH_FILES)
    assert not list(tmp_path.rglob("*.tmp"))


# ------------------------------------------------------------ labels & tracks
def test_labels_match_tracks(medium_sites):
    for site in medium_sites:
        for pop in ("target", "effector"):
            lab = site.labels[pop]
            tr = site.tracks[site.tracks["population"] == pop]
            for f in range(lab.shape[0]):
                rows = tr[tr["frame"] == f].set_index("track_id")
                ids, counts = np.unique(lab[f], return_counts=True)
                assert ids[0] == 0
                assert rows.index.is_unique
                assert set(ids[1:].tolist()) == set(rows.index.tolist()), (pop, f)
                np.testing.assert_array_equal(rows.loc[ids[1:], "area_px"].to_numpy(),
                                              counts[1:])
                com = np.array(ndimage.center_of_mass(np.ones_like(lab[f]), lab[f], ids[1:]))
                np.testing.assert_allclose(com[:, 0], rows.loc[ids[1:], "y_px"], atol=1e-6)
                np.testing.assert_allclose(com[:, 1], rows.loc[ids[1:], "x_px"], atol=1e-6)
        tr = site.tracks
        np.testing.assert_allclose(tr["y_um"], tr["y_px"] * 0.65)
        np.testing.assert_allclose(tr["area_um2"], tr["area_px"] * 0.65 ** 2)
        # target tracks are contiguous in time (one stretch per id)
        tt = tr[tr["population"] == "target"].groupby("track_id")["frame"]
        assert ((tt.max() - tt.min() + 1) == tt.count()).all()
        assert set(site.fates["target_track_id"]) == set(tt.groups)


def test_cell_in_cell_inner_inside_host_outline(medium_sites):
    checked = 0
    for site in medium_sites:
        tr = site.tracks
        inner = tr[(tr["state"] == "internalized") & (tr["host_track_id"] > 0)]
        lab_all = site.labels["target"]
        for r in inner.itertuples():
            lab = lab_all[r.frame]
            host = lab == r.host_track_id
            ys, xs = np.nonzero(host)
            if ys.size == 0 or ys.min() == 0 or xs.min() == 0 or \
                    ys.max() == lab.shape[0] - 1 or xs.max() == lab.shape[1] - 1:
                continue  # host cut by the image border: its outline is not closed
            inside = lab == r.track_id
            assert not (host & inside).any()
            filled = ndimage.binary_fill_holes(host)
            assert filled[inside].all(), (r.frame, r.track_id, r.host_track_id)
            checked += 1
    assert checked >= 5


def test_divisions_have_valid_parents(medium_sites):
    n_div = 0
    for site in medium_sites:
        fates = site.fates.set_index("target_track_id")
        daughters = fates[fates["parent_track_id"] > 0]
        for parent, group in daughters.groupby("parent_track_id"):
            # a daughter born outside the field enters later without a parent
            assert len(group) in (1, 2)
            assert parent in fates.index and fates.loc[parent, "divided"]
            assert fates.loc[parent, "end_reason"] == "divided"
            assert (group["first_frame"] == fates.loc[parent, "last_frame"] + 1).all()
            n_div += len(group) == 2
        tr = site.tracks[site.tracks["population"] == "target"]
        assert set(tr["parent_track_id"].unique()) - {0} == set(daughters["parent_track_id"])
        ev = site.events[site.events["event"] == "division"]
        assert len(ev) == len(daughters)
    assert n_div >= 1


def test_encounters_consistent_with_tracks(medium_sites):
    for site in medium_sites:
        tr = site.tracks.set_index(["population", "track_id", "frame"]).sort_index()
        enc = site.encounters
        assert len(enc) > 0
        assert enc["outcome"].isin(["kill", "cell_in_cell", "evasion", "trogocytosis_only",
                                    "censored"]).all()
        for r in enc.itertuples():
            for f in range(r.start_frame, r.end_frame + 1):
                assert tr.loc[("target", r.target_track_id, f), "contact_track_id"] == \
                    r.effector_track_id
            assert ("effector", r.effector_track_id, r.start_frame) in tr.index
            assert r.duration_min == pytest.approx((r.end_frame - r.start_frame + 1) * 4.0)
        # each target has at most one encounter; fates agree with encounters
        assert enc["target_track_id"].is_unique
        fates = site.fates.set_index("target_track_id")
        mapping = {"kill": "killed", "cell_in_cell": "cell_in_cell", "evasion": "evaded",
                   "trogocytosis_only": "nibbled", "censored": "censored"}
        for r in enc.itertuples():
            assert fates.loc[r.target_track_id, "outcome"] == mapping[r.outcome]
            assert fates.loc[r.target_track_id, "first_contact_frame"] == r.start_frame
        assert (fates["contacted"] == fates.index.isin(enc["target_track_id"])).all()
        # every visible effector-target contact (overlap or 8-touch) belongs to an encounter
        active = {(f, r.target_track_id, r.effector_track_id) for r in enc.itertuples()
                  for f in range(r.start_frame, r.end_frame + 1)}
        stray = 0
        for f in range(site.labels["target"].shape[0]):
            lt = site.labels["target"][f]
            near = ndimage.grey_dilation(site.labels["effector"][f], size=3)
            m = (lt > 0) & (near > 0)
            pairs = set(zip(lt[m].tolist(), near[m].tolist(), strict=True))
            stray += sum((f, t, e) not in active for t, e in pairs)
        assert stray <= 1
        assert site.qc["incidental_contacts"] <= 1


def test_masks_match_visible_signal(medium_sites):
    site = medium_sites[0]
    movie = site.movie.astype(float)
    for pop, c in (("target", 0), ("effector", 1)):
        lab = site.labels[pop]
        inside = movie[:, c][lab > 0].mean()
        free = (site.labels["target"] == 0) & (site.labels["effector"] == 0)
        outside = movie[:, c][free].mean()
        assert inside > outside + 100, pop


def test_killed_targets_round_shrink_and_light_up(medium_sites):
    n = 0
    for site in medium_sites:
        tr = site.tracks[site.tracks["population"] == "target"].set_index(["track_id", "frame"])
        lab, death = site.labels["target"], site.movie[:, 2].astype(float)
        killed = site.fates[(site.fates["outcome"] == "killed") & (site.fates["death_frame"] >= 0)]
        for r in killed.itertuples():
            before = r.death_onset_frame - 1
            if before < r.first_frame:
                continue
            assert tr.loc[(r.target_track_id, r.death_frame), "area_px"] < \
                tr.loc[(r.target_track_id, before), "area_px"]
            sig_before = death[before][lab[before] == r.target_track_id].mean()
            sig_dead = death[r.death_frame][lab[r.death_frame] == r.target_track_id].mean()
            assert sig_dead > sig_before + 50
            assert tr.loc[(r.target_track_id, r.death_frame), "state"] == "dead"
            n += 1
    assert n >= 2


# ---------------------------------------------------------------------- rates
def _pooled(sites, table):
    return pd.concat([getattr(s, table) for s in sites], ignore_index=True)


def test_outcome_rates_follow_config(rate_sites):
    observed = {}
    for name, sites in rate_sites.items():
        probs = sites[0].params.outcome_probs
        enc = _pooled(sites, "encounters")
        resolved = enc[enc["outcome"] != "censored"]
        n = len(resolved)
        assert n >= 120, (name, n)
        frac = resolved["outcome"].value_counts(normalize=True)
        for outcome, p in probs.items():
            tol = 3.5 * math.sqrt(p * (1 - p) / n) + 1.0 / n
            assert abs(frac.get(outcome, 0.0) - p) <= tol, (name, outcome, frac.get(outcome), p)
        observed[name] = (frac, n)
    (fc, nc), (fi, ni) = observed["control"], observed["inhibitor"]
    for outcome, sign in (("kill", +1), ("cell_in_cell", -1)):
        diff = fi.get(outcome, 0.0) - fc.get(outcome, 0.0)
        se = math.sqrt(fi.get(outcome, 0) * (1 - fi.get(outcome, 0)) / ni
                       + fc.get(outcome, 0) * (1 - fc.get(outcome, 0)) / nc)
        assert sign * diff > 3 * se, (outcome, diff, se)


def test_every_event_type_occurs(rate_sites, medium_sites):
    sites = [s for group in rate_sites.values() for s in group] + list(medium_sites)
    enc, fates, events = (_pooled(sites, t) for t in ("encounters", "fates", "events"))
    assert {"kill", "cell_in_cell", "evasion", "trogocytosis_only", "censored"} <= \
        set(enc["outcome"])
    assert {"killed", "cell_in_cell", "evaded", "nibbled", "uncontacted", "censored"} <= \
        set(fates["outcome"])
    assert "movie_end" in set(fates.loc[fates["outcome"] == "censored", "censor_reason"])
    assert {"division", "contact_start", "contact_end", "death_onset", "death",
            "internalization", "trogocytosis", "evasion", "leave_field"} <= set(events["event"])
    assert enc["trogocytosis"].any() and (enc.loc[enc["trogocytosis"],
                                                  "trogocytosis_area_fraction"] > 0).all()
    cic = fates[fates["outcome"] == "cell_in_cell"]
    assert cic["inner_survives"].any() and (~cic["inner_survives"].astype(bool)).any()


def test_nibbled_targets_lose_area_and_survive(rate_sites):
    n = 0
    for site in rate_sites["control"]:
        tr = site.tracks[site.tracks["population"] == "target"].set_index(["track_id", "frame"])
        enc = site.encounters
        for r in enc[enc["outcome"] == "trogocytosis_only"].itertuples():
            a0 = tr.loc[(r.target_track_id, r.start_frame), "area_px"]
            a1 = tr.loc[(r.target_track_id, r.end_frame), "area_px"]
            assert a1 < a0 * (1 - 0.5 * r.trogocytosis_area_fraction) + 30
            eff = site.tracks[(site.tracks["population"] == "effector")
                              & (site.tracks["track_id"] == r.effector_track_id)
                              & (site.tracks["frame"] == r.end_frame)]
            assert eff["trogocytosis_signal"].iloc[0] > 0
            fate = site.fates.set_index("target_track_id").loc[r.target_track_id]
            assert fate["death_onset_frame"] == -1
            n += 1
    assert n >= 3


def test_a_second_nibble_adds_to_the_label_still_carried():
    # 0.3 of a target of brightness 1 still held, 0.2 of a target of brightness 2
    # picked up: 0.3 + 0.4 intensity units = 0.35 of the new target's brightness
    # (keeping the larger of the two, 0.3, would hide the second nibble)
    held, b = carry_label(0.3, 1.0, 0.2, 2.0)
    assert (held, b) == pytest.approx((0.35, 2.0))
    assert carry_label(0.0, 1.0, 0.25, 1.5) == pytest.approx((0.25, 1.5))


def test_targets_leaving_the_field_are_censored():
    cfg = small_cfg(n_frames=20)
    cfg["targets"] = {**cfg["targets"], "speed_um_per_min": 4.0, "persistence_min": 60.0}
    cfg["contact"] = {**cfg["contact"], "duration_median_min": 40.0}
    params = params_for_site(cfg, IMAGING, CONTROL)
    sites = [simulate_site(params, seed=k) for k in range(3)]
    fates, enc = _pooled(sites, "fates"), _pooled(sites, "encounters")
    left = fates[fates["end_reason"] == "left_field"]
    assert len(left) >= 5
    assert (left["last_frame"] < 19).all()
    cens = fates[(fates["outcome"] == "censored") & (fates["censor_reason"] == "left_field")]
    assert len(cens) >= 1
    for site in sites:
        ev = site.events[(site.events["event"] == "leave_field")
                         & (site.events["population"] == "target")]
        f = site.fates.set_index("target_track_id")
        assert (ev["frame"].to_numpy() == f.loc[ev["track_id"], "last_frame"].to_numpy()).all()
        e = site.encounters[site.encounters["censor_reason"] == "left_field"]
        assert (e["end_frame"].to_numpy() == f.loc[e["target_track_id"],
                                                   "last_frame"].to_numpy()).all()
    assert set(enc["outcome"]) >= {"censored"}
