"""Per-condition estimates over wells and comparisons with the control.

- Condition mean of a well-level metric with a t confidence interval over
  wells (``statsmodels`` ``DescrStatsW.tconfint_mean``), truncated to the
  metric's range (fractions [0, 1], rates and times >= 0; noted in the row).
- Difference to the control: Welch's t-test on well values
  (``scipy.stats.ttest_ind(equal_var=False)``) and its confidence interval.
- Ratio to the control (fractions): quasi-binomial GLM with a log link on the
  wells' counts (``statsmodels``), dispersion max(1, Pearson chi2 / df), t
  interval with n_wells - 2 degrees of freedom.
- Time to kill: Kaplan-Meier / log-rank (``lifelines``).
- Benjamini-Hochberg q over all comparisons (``statsmodels.stats.multitest``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from lifelines.statistics import logrank_test
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import DescrStatsW

from livescreen.stats.wells import FRACTIONS, METRICS

CONDITION_COLUMNS = ["condition", "compound", "dose", "dose_unit", "role"]
WELCH = "Welch t-test on well values (scipy.stats.ttest_ind, equal_var=False)"
GLM_RATIO = ("ratio: quasi-binomial log-link GLM on well counts (statsmodels; "
             "dispersion max(1, X2/df), t with n_wells-2 df)")
LOGRANK = ("log-rank test on contacted targets pooled over wells (lifelines.statistics."
           "logrank_test); cells of a well are not independent, read p as descriptive")


def metric_range(metric: str) -> tuple[float, float]:
    """Values a well-level metric can take: fractions in [0, 1], the rest >= 0.

    Parameters
    ----------
    metric : str
        Well-level metric column.

    Returns
    -------
    (float, float)
        Lower and upper bound.
    """
    return (0.0, 1.0) if metric in FRACTIONS else (0.0, np.inf)


def truncate_interval(lo: float, hi: float, bounds: tuple[float, float]
                      ) -> tuple[float, float, str]:
    """Clip a confidence interval to the parameter's range.

    The clipped interval covers the true value whenever the t interval does
    (the true value lies in the range), so the coverage is unchanged; only
    the impossible part (e.g. a negative fraction from 3 wells) is cut.

    Parameters
    ----------
    lo, hi : float
        Interval ends.
    bounds : (float, float)
        The parameter's range.

    Returns
    -------
    lo, hi, note
        Clipped ends and a note naming the cut ('' when nothing was cut).
    """
    low, high = bounds
    cut = []
    if lo < low:
        cut.append(f"lower end {lo:.3g} set to {low:g}")
    if hi > high:
        cut.append(f"upper end {hi:.3g} set to {high:g}")
    note = f"t interval truncated to the metric's range ({'; '.join(cut)})" if cut else ""
    return float(np.clip(lo, low, high)), float(np.clip(hi, low, high)), note


def _mean_ci(values: np.ndarray, confidence: float, bounds: tuple[float, float] = (-np.inf, np.inf)
             ) -> tuple[float, float, float, float, str]:
    n = len(values)
    if n == 0:
        return np.nan, np.nan, np.nan, np.nan, "no well with a defined value"
    mean = float(np.mean(values))
    if n == 1:
        return mean, np.nan, np.nan, np.nan, "one well: no confidence interval"
    d = DescrStatsW(values)
    sd = float(np.std(values, ddof=1))
    if sd == 0:
        return mean, mean, mean, 0.0, "identical values in every well: interval has zero width"
    lo, hi = d.tconfint_mean(alpha=1 - confidence)
    lo, hi, note = truncate_interval(float(lo), float(hi), bounds)
    return mean, lo, hi, sd, note


def condition_summary(wells: pd.DataFrame, metrics=tuple(METRICS),
                      confidence: float = 0.95) -> pd.DataFrame:
    """Mean over wells with a t confidence interval, per condition and metric.

    The interval is truncated to the metric's range (:func:`metric_range`):
    with 3 wells a t interval of a small fraction easily reaches below 0.

    Parameters
    ----------
    wells : pandas.DataFrame
        The per-well table.
    metrics : sequence of str
        Well-level metric columns.
    confidence : float
        Confidence level of the interval.

    Returns
    -------
    pandas.DataFrame
        condition, compound, dose, dose_unit, role, metric, mean, ci_low, ci_high,
        sd, n_wells (wells with a defined value), n_wells_total, n_cells, method, note.
    """
    rows = []
    for _cond, g in wells.groupby("condition", sort=True):
        first = g.iloc[0]
        for m in metrics:
            vals = g[m].dropna().to_numpy(float)
            mean, lo, hi, sd, note = _mean_ci(vals, confidence, metric_range(m))
            denom = METRICS[m][1] if m in METRICS else None
            rows.append({**{c: first[c] for c in CONDITION_COLUMNS}, "metric": m,
                         "mean": mean, "ci_low": lo, "ci_high": hi, "sd": sd,
                         "n_wells": len(vals), "n_wells_total": len(g),
                         "n_cells": int(g[denom].sum()) if denom else 0,
                         "method": ("mean over wells; t interval (statsmodels DescrStatsW), "
                                    "truncated to the metric's range"),
                         "note": note})
    return pd.DataFrame(rows)


def _welch(a: np.ndarray, b: np.ndarray, confidence: float) -> dict:
    out = {"difference": np.nan, "diff_ci_low": np.nan, "diff_ci_high": np.nan,
           "statistic": np.nan, "p_value": np.nan, "note": ""}
    if len(a) == 0 or len(b) == 0:
        out["note"] = "no well with a defined value in " + ("condition" if len(a) == 0
                                                            else "control")
        return out
    out["difference"] = float(np.mean(a) - np.mean(b))
    if len(a) < 2 or len(b) < 2:
        out["note"] = "fewer than 2 wells with a value: no test, no interval"
        return out
    if np.var(a) == 0 and np.var(b) == 0:
        out["note"] = "no variation between wells in either group: no test"
        return out
    res = stats.ttest_ind(a, b, equal_var=False)
    ci = res.confidence_interval(confidence_level=confidence)
    out.update(statistic=float(res.statistic), p_value=float(res.pvalue),
               diff_ci_low=float(ci.low), diff_ci_high=float(ci.high))
    return out


def _ratio_glm(k: np.ndarray, n: np.ndarray, treated: np.ndarray, confidence: float) -> dict:
    out = {"ratio": np.nan, "ratio_ci_low": np.nan, "ratio_ci_high": np.nan, "note": ""}
    keep = n > 0
    k, n, treated = k[keep], n[keep], treated[keep]
    p1 = k[treated].sum() / n[treated].sum() if n[treated].sum() else np.nan
    p0 = k[~treated].sum() / n[~treated].sum() if n[~treated].sum() else np.nan
    if not np.isfinite(p0) or not np.isfinite(p1):
        out["note"] = "ratio undefined: a group has no resolved contacted target"
        return out
    if p0 == 0:
        out["note"] = "ratio undefined: no event in the control"
        return out
    out["ratio"] = float(p1 / p0)
    if p1 == 0:
        out["note"] = "no event in the condition: ratio 0, no interval"
        return out
    df = len(k) - 2
    if df < 1:
        out["note"] = "too few wells for a ratio interval"
        return out
    exog = np.column_stack([np.ones(len(k)), treated.astype(float)])
    endog = np.column_stack([k, n - k])
    start = np.array([np.log(p0), np.log(p1 / p0)])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fam = sm.families.Binomial(link=sm.families.links.Log())
            res = sm.GLM(endog, exog, family=fam).fit(start_params=start)
            disp = max(1.0, float(res.pearson_chi2) / df)
    except (ValueError, np.linalg.LinAlgError, FloatingPointError) as err:
        out["note"] = f"ratio GLM failed: {err}"
        return out
    se = float(res.bse[1]) * np.sqrt(disp)
    t = stats.t.ppf(0.5 + confidence / 2, df)
    b = float(res.params[1])
    out.update(ratio_ci_low=float(np.exp(b - t * se)), ratio_ci_high=float(np.exp(b + t * se)))
    return out


def comparisons(wells: pd.DataFrame, control: str, metrics=tuple(METRICS),
                confidence: float = 0.95, extra: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each condition against the control, per metric, with BH q over all rows.

    Parameters
    ----------
    wells : pandas.DataFrame
        The per-well table.
    control : str
        The control condition (``study.control_condition``).
    metrics : sequence of str
        Well-level metric columns to compare.
    confidence : float
        Confidence level of the intervals.
    extra : pandas.DataFrame, optional
        Further comparison rows (e.g. :func:`logrank_vs_control`) included in
        the Benjamini-Hochberg correction.

    Returns
    -------
    pandas.DataFrame
        condition, control, metric, estimate, estimate_control, difference,
        diff_ci_low, diff_ci_high, ratio, ratio_ci_low, ratio_ci_high, statistic,
        p_value, q_value, n_wells, n_wells_control, method, note.
    """
    ctrl = wells[wells["condition"] == control]
    rows = []
    for cond, g in wells.groupby("condition", sort=True):
        if cond == control:
            continue
        for m in metrics:
            a = g[m].dropna().to_numpy(float)
            b = ctrl[m].dropna().to_numpy(float)
            row = {"condition": cond, "control": control, "metric": m,
                   "estimate": float(np.mean(a)) if len(a) else np.nan,
                   "estimate_control": float(np.mean(b)) if len(b) else np.nan,
                   "n_wells": len(a), "n_wells_control": len(b)}
            notes = []
            if len(ctrl) == 0:
                notes.append(f"control condition '{control}' has no wells")
            w = _welch(a, b, confidence)
            notes.append(w.pop("note"))
            row.update(w)
            if m in FRACTIONS:
                both = pd.concat([g, ctrl])
                both = both[both["n_resolved"] > 0]
                fate = FRACTIONS[m]
                r = _ratio_glm(both[f"n_{fate}"].to_numpy(float),
                               both["n_resolved"].to_numpy(float),
                               (both["condition"] == cond).to_numpy(), confidence)
                notes.append(r.pop("note"))
                row.update(r)
                row["method"] = f"difference: {WELCH}; {GLM_RATIO}"
            else:
                mb = row["estimate_control"]
                row.update(ratio=row["estimate"] / mb if mb and np.isfinite(mb) else np.nan,
                           ratio_ci_low=np.nan, ratio_ci_high=np.nan)
                row["method"] = f"difference: {WELCH}; ratio of means (no interval)"
                if not np.isfinite(row["ratio"]):
                    notes.append("ratio undefined (control mean 0 or missing)")
            row["note"] = "; ".join(n for n in notes if n)
            rows.append(row)
    out = pd.DataFrame(rows)
    if extra is not None and len(extra):
        out = pd.concat([out, extra], ignore_index=True) if len(out) else extra.copy()
    if not len(out):
        return out
    out["q_value"] = np.nan
    ok = out["p_value"].notna().to_numpy()
    if ok.any():
        out.loc[ok, "q_value"] = multipletests(out.loc[ok, "p_value"], method="fdr_bh")[1]
    out.loc[~ok & (out["note"] == ""), "note"] = "no p value"
    return out


def survival_data(fates: pd.DataFrame) -> pd.DataFrame:
    """Time from first contact to death by killing, with censoring.

    Contacted targets only. Killed targets with a death time are events at
    ``time_to_death_min``; every other contacted target is censored at its
    follow-up (``follow_up_min``: last seen - first contact).

    Parameters
    ----------
    fates : pandas.DataFrame
        Study fates table (with ``follow_up_min``).

    Returns
    -------
    pandas.DataFrame
        The contacted rows with ``duration_min`` and ``event`` (bool); rows
        without a usable time are dropped.
    """
    f = fates[fates["contacted"].astype(bool)].copy()
    event = f["outcome"].eq("killed") & f["time_to_death_min"].notna()
    f["event"] = event
    f["duration_min"] = np.where(event, f["time_to_death_min"], f["follow_up_min"]).astype(float)
    f = f[np.isfinite(f["duration_min"])]
    f["duration_min"] = f["duration_min"].clip(lower=0.0)
    return f


def logrank_vs_control(surv: pd.DataFrame, control: str) -> pd.DataFrame:
    """Log-rank test of time to kill, each condition against the control.

    Parameters
    ----------
    surv : pandas.DataFrame
        From :func:`survival_data`.
    control : str
        Control condition.

    Returns
    -------
    pandas.DataFrame
        Comparison rows (metric ``time_to_kill``) for :func:`comparisons`.
    """
    ctrl = surv[surv["condition"] == control]
    rows = []
    for cond, g in surv.groupby("condition", sort=True):
        if cond == control:
            continue
        row = {"condition": cond, "control": control, "metric": "time_to_kill",
               "estimate": float(g["event"].mean()) if len(g) else np.nan,
               "estimate_control": float(ctrl["event"].mean()) if len(ctrl) else np.nan,
               "difference": np.nan, "diff_ci_low": np.nan, "diff_ci_high": np.nan,
               "ratio": np.nan, "ratio_ci_low": np.nan, "ratio_ci_high": np.nan,
               "statistic": np.nan, "p_value": np.nan,
               "n_wells": int(g[["plate", "well"]].drop_duplicates().shape[0]),
               "n_wells_control": int(ctrl[["plate", "well"]].drop_duplicates().shape[0]),
               "method": LOGRANK,
               "note": "estimate = fraction of contacted targets seen killed; no effect size"}
        if len(ctrl) == 0:
            row["note"] = f"control condition '{control}' has no contacted targets: no test"
        elif len(g) == 0 or (g["event"].sum() + ctrl["event"].sum()) == 0:
            row["note"] = "no contacted targets or no kills in either group: no test"
        else:
            res = logrank_test(g["duration_min"], ctrl["duration_min"], g["event"], ctrl["event"])
            row.update(statistic=float(res.test_statistic), p_value=float(res.p_value))
        rows.append(row)
    return pd.DataFrame(rows)
