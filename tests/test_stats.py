"""Statistics against published results, simulator truth and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, load_yaml
from livescreen import study
from livescreen.simulate import hill
from livescreen.stats import schemas
from livescreen.stats.dose import fit_logistic4, logistic4
from livescreen.stats.estimates import logrank_vs_control
from livescreen.stats.pipeline import analyse

# Freireich et al. (1963) 6-MP vs placebo remission times (weeks); 0 = censored.
MP6 = [(6, 1), (6, 1), (6, 1), (6, 0), (7, 1), (9, 0), (10, 1), (10, 0), (11, 0), (13, 1),
       (16, 1), (17, 0), (19, 0), (20, 0), (22, 1), (23, 1), (25, 0), (32, 0), (32, 0), (34, 0),
       (35, 0)]
PLACEBO = [1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11, 12, 12, 15, 17, 22, 23]


def test_logrank_reproduces_freireich():
    surv = pd.DataFrame(
        [{"condition": "6-MP", "plate": "P", "well": "A1", "duration_min": t, "event": bool(e)}
         for t, e in MP6]
        + [{"condition": "placebo", "plate": "P", "well": "A2", "duration_min": t, "event": True}
           for t in PLACEBO])
    row = logrank_vs_control(surv, "placebo").iloc[0]
    assert row["statistic"] == pytest.approx(16.79, abs=0.005)
    assert row["p_value"] == pytest.approx(4.17e-5, rel=0.005)


def test_logistic4_recovers_known_curve():
    dose = np.repeat([0, 0.01, 0.1, 1, 10, 100], 3)
    y = logistic4(dose, 0.2, 0.8, np.log10(1.5), 1.2)
    y = y + np.tile([-0.01, 0.0, 0.01], 6)
    fit = fit_logistic4(dose, y)
    assert fit["fitted"] and fit["ec50_ci_low"] < 1.5 < fit["ec50_ci_high"]
    assert fit["ec50"] == pytest.approx(1.5, rel=0.1) and fit["hill"] == pytest.approx(1.2, rel=0.1)


@pytest.fixture(scope="module")
def demo():
    from livescreen.stats.simulated import truth_screen

    cfg = load_yaml(REPO / "config" / "config.yaml")
    sheet = study.read_sample_sheet(REPO / "config" / "samples.tsv")
    sc = truth_screen(cfg["simulate"], cfg["imaging"], sheet, cfg["simulate"]["seed"])
    return sheet, sc, analyse(sc["fates"], sc["effectors"], sheet, "control", cfg.get("stats"))


@pytest.mark.parametrize("metric, p", [("frac_killed", "p_kill"),
                                       ("frac_cell_in_cell", "p_cell_in_cell")])
def test_demo_recovers_inhibitor_effect(demo, metric, p):
    _, sc, out = demo
    truth = sc["truth"]
    cmp = out["comparisons"].set_index(["condition", "metric"])
    row = cmp.loc[("inh_10uM", metric)]
    true_diff = truth.loc["inh_10uM", p] - truth.loc["control", p]
    assert np.sign(row["difference"]) == np.sign(true_diff) != 0
    assert row["diff_ci_low"] <= true_diff <= row["diff_ci_high"]
    assert row["ratio_ci_low"] <= truth.loc["inh_10uM", p] / truth.loc["control", p] \
        <= row["ratio_ci_high"]
    # the truth rates are the simulator's Hill model
    assert truth.loc["inh_10uM", "hill_fraction"] == pytest.approx(hill(10.0, 1.0, 1.0))


def test_demo_tables_meet_contracts(demo):
    _, _, out = demo
    for name, model in [("wells", schemas.Wells), ("conditions", schemas.Conditions),
                        ("comparisons", schemas.Comparisons),
                        ("dose_response", schemas.DoseResponse), ("plate_qc", schemas.PlateQC)]:
        model.validate(out[name])
    cmp = out["comparisons"]
    assert cmp["q_value"].notna().sum() == cmp["p_value"].notna().sum()
    assert (cmp["q_value"].dropna() >= cmp["p_value"].dropna()).all()
    qc = out["plate_qc"].set_index("metric").loc["frac_killed"]
    assert qc["ssmd"] > 2      # staurosporine kills nearly every contacted target


def _bad_design(demo):
    """Edge cases: one-well condition, no contacted targets, all-zero outcomes, 2 doses."""
    sheet, sc, _ = demo
    fates, eff = sc["fates"].copy(), sc["effectors"].copy()
    keep = ~((sheet["condition"] == "inh_0.1uM") & (sheet["well"] != "B03"))
    sheet = sheet[keep].copy()
    fates = fates[fates["well"].isin(sheet["well"])].copy()
    # inh_1uM: no target was contacted
    w1 = fates["condition"] == "inh_1uM"
    fates.loc[w1, "contacted"] = False
    fates.loc[w1, "outcome"] = "uncontacted"
    # inh_10uM: every resolved contacted target evaded (zero kills, zero cell-in-cell)
    w10 = (fates["condition"] == "inh_10uM") & fates["outcome"].isin(
        ["killed", "cell_in_cell", "nibbled"])
    fates.loc[w10, "outcome"] = "evaded"
    fates.loc[w10, "time_to_death_min"] = np.nan
    return sheet, fates, eff


def test_bad_input_gives_stated_limitations(demo):
    sheet, fates, eff = _bad_design(demo)
    out = analyse(fates, eff, sheet, "control")
    for name, model in [("wells", schemas.Wells), ("conditions", schemas.Conditions),
                        ("comparisons", schemas.Comparisons),
                        ("dose_response", schemas.DoseResponse), ("plate_qc", schemas.PlateQC)]:
        model.validate(out[name])   # every null has a note
    cond = out["conditions"].set_index(["condition", "metric"])
    one = cond.loc[("inh_0.1uM", "frac_killed")]
    assert np.isnan(one["ci_low"]) and "one well" in one["note"]
    none = cond.loc[("inh_1uM", "frac_killed")]
    assert np.isnan(none["mean"]) and none["n_wells"] == 0 and none["note"]
    wells = out["wells"].set_index("well")
    assert "no contacted target" in wells.loc["B04", "note"]
    cmp = out["comparisons"].set_index(["condition", "metric"])
    zero = cmp.loc[("inh_10uM", "frac_cell_in_cell")]
    assert zero["estimate"] == 0 and zero["ratio"] == 0 and "no event" in zero["note"]


def test_missing_control_and_two_doses(demo):
    sheet, sc, _ = demo
    sub = sheet[sheet["condition"].isin(["inh_1uM", "inh_10uM"])]
    fates = sc["fates"][sc["fates"]["condition"].isin(sub["condition"])]
    out = analyse(fates, sc["effectors"], sub, "control")
    cmp = out["comparisons"]
    assert len(cmp) and cmp["p_value"].isna().all()
    assert cmp["note"].str.contains("control").all()
    dr = out["dose_response"]
    assert (~dr["fitted"]).all() and dr["note"].str.contains("dose levels").all()
    schemas.Comparisons.validate(cmp)
    schemas.DoseResponse.validate(dr)


def test_inputs_not_modified(demo):
    sheet, sc, _ = demo
    before = sc["fates"].copy()
    analyse(sc["fates"], sc["effectors"], sheet, "control")
    pd.testing.assert_frame_equal(before, sc["fates"])


def test_condition_interval_stays_in_metric_range():
    from livescreen.stats.estimates import condition_summary

    # 3 wells of a rare outcome: the plain t interval reaches below 0
    wells = pd.DataFrame({"condition": "c", "compound": "x", "dose": 1.0, "dose_unit": "uM",
                          "role": "treatment", "frac_killed": [0.0, 0.02, 0.3],
                          "n_resolved": [20, 25, 10]})
    row = condition_summary(wells, ["frac_killed"]).iloc[0]
    t_low = 0.10667 - 4.3027 * np.std([0.0, 0.02, 0.3], ddof=1) / np.sqrt(3)
    assert t_low < 0                                   # what the t interval alone gives
    assert row["ci_low"] == 0.0 and "truncated" in row["note"] and "lower end" in row["note"]
    assert row["ci_high"] == pytest.approx(0.10667 + (0.10667 - t_low), rel=1e-3)
    # an interval already inside [0, 1] is left alone and carries no note
    wells["frac_killed"] = [0.4, 0.5, 0.45]
    row = condition_summary(wells, ["frac_killed"]).iloc[0]
    assert 0 < row["ci_low"] < 0.45 < row["ci_high"] < 1 and row["note"] == ""
