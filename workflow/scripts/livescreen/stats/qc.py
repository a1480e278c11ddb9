"""Plate quality: Z' factor and SSMD from negative and positive control wells.

Z' = 1 - 3 (sd_pos + sd_neg) / |mean_pos - mean_neg| (Zhang et al. 1999);
SSMD = (mean_pos - mean_neg) / sqrt(sd_pos^2 + sd_neg^2) (Zhang 2007), with
sample standard deviations over wells.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _zprime_ssmd(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float, str]:
    if len(pos) < 2 or len(neg) < 2:
        return np.nan, np.nan, (f"needs >= 2 wells of each control role with a value "
                                f"(positive {len(pos)}, negative {len(neg)})")
    mp, mn = pos.mean(), neg.mean()
    sp, sn = pos.std(ddof=1), neg.std(ddof=1)
    if mp == mn:
        return np.nan, np.nan, "control means equal: Z' and SSMD undefined"
    z = 1.0 - 3.0 * (sp + sn) / abs(mp - mn)
    if sp == 0 and sn == 0:
        return float(z), np.nan, "no variation within controls: SSMD undefined"
    return float(z), float((mp - mn) / np.hypot(sp, sn)), ""


def plate_qc(wells: pd.DataFrame, metrics) -> pd.DataFrame:
    """Z' and SSMD per plate and metric from the sheet's control roles.

    Parameters
    ----------
    wells : pandas.DataFrame
        Per-well table with ``plate`` and ``role``.
    metrics : sequence of str
        Metrics to assess.

    Returns
    -------
    pandas.DataFrame
        plate, metric, n_neg, n_pos, mean_neg, sd_neg, mean_pos, sd_pos, z_prime,
        ssmd, note.
    """
    rows = []
    for plate, g in wells.groupby("plate", sort=True):
        for m in metrics:
            neg = g.loc[g["role"] == "negative_control", m].dropna().to_numpy(float)
            pos = g.loc[g["role"] == "positive_control", m].dropna().to_numpy(float)
            z, s, note = _zprime_ssmd(pos, neg)
            rows.append({"plate": plate, "metric": m, "n_neg": len(neg), "n_pos": len(pos),
                         "mean_neg": neg.mean() if len(neg) else np.nan,
                         "sd_neg": neg.std(ddof=1) if len(neg) > 1 else np.nan,
                         "mean_pos": pos.mean() if len(pos) else np.nan,
                         "sd_pos": pos.std(ddof=1) if len(pos) > 1 else np.nan,
                         "z_prime": z, "ssmd": s, "note": note})
    return pd.DataFrame(rows)
