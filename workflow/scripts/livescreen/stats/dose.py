"""Four-parameter logistic dose-response fits (``scipy.optimize.curve_fit``).

Model: ``y = bottom + (top - bottom) * d**h / (d**h + EC50**h)`` with the
control wells at dose 0 (the curve's ``bottom``). Parameters are fitted on
well-level values with ``log10(EC50)``; the EC50 interval is the t interval
of ``log10(EC50)`` (n - 4 degrees of freedom) transformed back.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats
from scipy.optimize import OptimizeWarning, curve_fit

METHOD = "4-parameter logistic, least squares on well values (scipy.optimize.curve_fit)"


def logistic4(dose, bottom, top, log10_ec50, hill):
    """Four-parameter logistic at ``dose`` (0 gives ``bottom``)."""
    d = np.asarray(dose, float)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        frac = np.where(d > 0, 1.0 / (1.0 + (10.0 ** log10_ec50 / np.where(d > 0, d, 1)) ** hill),
                        0.0)
    return bottom + (top - bottom) * frac


def fit_logistic4(dose: np.ndarray, y: np.ndarray, confidence: float = 0.95,
                  min_levels: int = 4) -> dict:
    """Fit the 4PL to (dose, response) points; say why when it cannot be fitted.

    Parameters
    ----------
    dose, y : numpy.ndarray
        Doses (0 = control) and responses, one per well.
    confidence : float
        Level of the EC50 interval.
    min_levels : int
        Fewest distinct dose levels (control included) needed to fit.

    Returns
    -------
    dict
        fitted (bool), bottom, top, ec50, ec50_ci_low, ec50_ci_high, hill,
        r_squared, rmse, n_points, n_doses, df, note.
    """
    dose, y = np.asarray(dose, float), np.asarray(y, float)
    ok = np.isfinite(dose) & np.isfinite(y)
    dose, y = dose[ok], y[ok]
    levels = np.unique(dose)
    res = {"fitted": False, "bottom": np.nan, "top": np.nan, "ec50": np.nan,
           "ec50_ci_low": np.nan, "ec50_ci_high": np.nan, "hill": np.nan,
           "r_squared": np.nan, "rmse": np.nan, "n_points": int(len(y)),
           "n_doses": int(len(levels)), "df": int(len(y) - 4), "note": ""}
    pos = levels[levels > 0]
    if len(levels) < min_levels or len(y) < 5 or len(pos) < 2:
        res["note"] = (f"not fitted: {len(levels)} dose levels (control included) and "
                       f"{len(y)} wells; a 4-parameter fit needs >= {min_levels} levels "
                       "and >= 5 wells")
        return res
    if np.ptp(y) == 0:
        res["note"] = "not fitted: the response is identical at every dose"
        return res
    lo_d, hi_d = np.log10(pos.min()), np.log10(pos.max())
    means = pd.Series(y).groupby(dose).mean()
    p0 = [means.iloc[0], means.iloc[-1], (lo_d + hi_d) / 2, 1.0]
    span = float(np.ptp(y))
    y_lo, y_hi = float(y.min()) - span, float(y.max()) + span
    if 0 <= y.min() and y.max() <= 1:  # fractions stay fractions
        y_lo, y_hi = max(y_lo, 0.0), min(y_hi, 1.0)
    p0[:2] = np.clip(p0[:2], y_lo, y_hi)
    bounds = ([y_lo, y_lo, lo_d - 3, 0.1], [y_hi, y_hi, hi_d + 3, 10.0])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            popt, pcov = curve_fit(logistic4, dose, y, p0=p0, bounds=bounds, maxfev=20000)
    except (RuntimeError, ValueError) as err:
        res["note"] = f"not fitted: optimiser failed ({err})"
        return res
    bottom, top, lec, h = (float(v) for v in popt)
    pred = logistic4(dose, *popt)
    ss_res = float(np.sum((y - pred) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    res.update(fitted=True, bottom=bottom, top=top, ec50=10.0 ** lec, hill=h,
               r_squared=1 - ss_res / ss_tot if ss_tot > 0 else np.nan,
               rmse=float(np.sqrt(ss_res / len(y))))
    notes = []
    se = float(np.sqrt(pcov[2, 2])) if np.all(np.isfinite(pcov)) else np.nan
    half = stats.t.ppf(0.5 + confidence / 2, res["df"]) * se if res["df"] >= 1 else np.nan
    if np.isfinite(half) and lec - half >= lo_d - 3 and lec + half <= hi_d + 3:
        res.update(ec50_ci_low=10.0 ** (lec - half), ec50_ci_high=10.0 ** (lec + half))
    elif np.isfinite(half):
        notes.append("EC50 not determined: its interval reaches beyond 1000x the tested doses")
    else:
        notes.append("EC50 interval not estimable (singular covariance)")
    if not pos.min() <= res["ec50"] <= pos.max():
        notes.append("EC50 outside the tested doses (extrapolated)")
    if np.isclose(h, bounds[0][3]) or np.isclose(h, bounds[1][3]) or \
            np.isclose(lec, bounds[0][2]) or np.isclose(lec, bounds[1][2]):
        notes.append("a parameter hit its bound: fit poorly determined")
    res["note"] = "; ".join(notes)
    return res


def dose_response(wells: pd.DataFrame, control: str, metrics, confidence: float = 0.95,
                  min_levels: int = 4) -> pd.DataFrame:
    """4PL fit per compound and metric, the control wells as dose 0.

    Parameters
    ----------
    wells : pandas.DataFrame
        Per-well table (``compound``, ``dose``, ``dose_unit``, ``condition``, metrics).
    control : str
        Control condition: its wells are dose 0 of every compound.
    metrics : sequence of str
        Metrics to fit.
    confidence : float
        Level of the EC50 interval.
    min_levels : int
        Fewest distinct dose levels needed.

    Returns
    -------
    pandas.DataFrame
        compound, dose_unit, metric, fitted, bottom, top, ec50, ec50_ci_low,
        ec50_ci_high, hill, r_squared, rmse, n_points, n_doses, df, method, note.
    """
    ctrl = wells[wells["condition"] == control]
    treated = wells[(wells["condition"] != control) & (wells["dose"] > 0)]
    rows = []
    for compound, g in treated.groupby("compound", sort=True):
        units = g["dose_unit"].unique()
        for m in metrics:
            data = pd.concat([ctrl.assign(dose=0.0), g])
            r = fit_logistic4(data["dose"].to_numpy(float), data[m].to_numpy(float),
                              confidence, min_levels)
            if len(units) > 1:
                r.update(fitted=False, note="not fitted: mixed dose units " + ", ".join(units))
            if len(ctrl) == 0:
                r["note"] = "; ".join(filter(None, [r["note"], "no control wells at dose 0"]))
            rows.append({"compound": compound, "dose_unit": units[0], "metric": m, **r,
                         "method": METHOD})
    return pd.DataFrame(rows)
