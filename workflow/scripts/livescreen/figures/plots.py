"""The figures of the report and the paper, each from study tables only."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import seaborn as sns
from lifelines import KaplanMeierFitter

from livescreen.figures.catalog import FIGURE_TABLES
from livescreen.figures.style import figure
from livescreen.stats.dose import logistic4
from livescreen.stats.estimates import survival_data
from livescreen.stats.wells import FRACTIONS, METRICS

OUTCOME_TITLES = {"frac_killed": "killed", "frac_cell_in_cell": "cell-in-cell",
                  "frac_evaded": "evaded", "frac_nibbled": "nibbled only"}


def condition_order(wells: pd.DataFrame, control: str | None = None) -> list[str]:
    """Conditions: control first, then by compound and dose."""
    d = wells.drop_duplicates("condition")
    d = d.assign(_c=d["condition"].ne(control)).sort_values(["_c", "compound", "dose",
                                                              "condition"])
    return d["condition"].tolist()


def _control(comparisons: pd.DataFrame | None) -> str | None:
    if comparisons is None or not len(comparisons):
        return None
    return str(comparisons["control"].iloc[0])


def plot_outcome_fractions(wells: pd.DataFrame, conditions: pd.DataFrame,
                           comparisons: pd.DataFrame | None = None, width_mm: float = 180.0):
    """Outcome fractions per condition: one point per well, mean and 95% CI.

    Parameters
    ----------
    wells, conditions, comparisons : pandas.DataFrame
        Study tables (``comparisons`` names the control, drawn first).
    width_mm : float
        Figure width.

    Returns
    -------
    matplotlib.figure.Figure
    """
    order = condition_order(wells, _control(comparisons))
    fig, axes = figure(width_mm, 75, 1, len(FRACTIONS), sharey=True)
    pal = dict(zip(order, sns.color_palette("colorblind", len(order)), strict=False))
    n = conditions[conditions["metric"] == "frac_killed"].set_index("condition")
    labels = [f"{c}\n{int(n.loc[c, 'n_wells_total'])} w / {int(n.loc[c, 'n_cells'])} c"
              if c in n.index else c for c in order]
    for ax, (metric, title) in zip(axes[0], OUTCOME_TITLES.items(), strict=False):
        sns.stripplot(data=wells, x="condition", y=metric, order=order, hue="condition",
                      palette=pal, legend=False, ax=ax, size=4, jitter=0.15, alpha=0.8)
        c = conditions[conditions["metric"] == metric].set_index("condition").reindex(order)
        x = np.arange(len(order))
        err = np.vstack([c["mean"] - c["ci_low"], c["ci_high"] - c["mean"]])
        ax.errorbar(x, c["mean"], yerr=np.nan_to_num(err), fmt="_", color="black", ms=12,
                    capsize=2.5, lw=1, zorder=5)
        ax.set_title(title)
        ax.set_xlabel("")
        ax.set_xticks(x, labels, rotation=60, ha="right", rotation_mode="anchor")
        ax.set_ylim(-0.03, 1.03)
    axes[0][0].set_ylabel("fraction of contacted, resolved targets")
    fig.supxlabel("condition (n wells / n contacted resolved cells); bar: mean, 95% CI over wells",
                  fontsize=7)
    return fig


def plot_time_to_kill(fates: pd.DataFrame, comparisons: pd.DataFrame | None = None,
                      width_mm: float = 120.0):
    """Kaplan-Meier cumulative fraction killed after first contact, per condition.

    Returns
    -------
    matplotlib.figure.Figure
    """
    control = _control(comparisons)
    surv = survival_data(fates)
    order = condition_order(surv if len(surv) else fates, control)
    fig, axes = figure(width_mm, 80)
    ax = axes[0][0]
    pvals = {}
    if comparisons is not None and len(comparisons):
        lr = comparisons[comparisons["metric"] == "time_to_kill"]
        pvals = dict(zip(lr["condition"], lr["p_value"], strict=False))
    colors = sns.color_palette("colorblind", max(len(order), 1))
    for col, cond in zip(colors, order, strict=False):
        g = surv[surv["condition"] == cond]
        if not len(g):
            continue
        p = pvals.get(cond)
        label = f"{cond} (n={len(g)}, {int(g['event'].sum())} killed"
        label += f", log-rank p={p:.2g})" if p is not None and np.isfinite(p) else ")"
        km = KaplanMeierFitter(label=label).fit(g["duration_min"], g["event"])
        km.plot_cumulative_density(ax=ax, ci_show=True, color=col, lw=1.2, ci_alpha=0.15)
    ax.set_xlabel("time since first contact (min)")
    ax.set_ylabel("cumulative fraction killed (Kaplan-Meier)")
    ax.set_ylim(0, 1)
    ax.set_xlim(left=0)
    ax.legend(loc="upper left", frameon=False, fontsize=6)
    return fig


def _dose_axis_zero(doses: np.ndarray) -> float:
    pos = doses[doses > 0]
    return float(pos.min() / 10) if len(pos) else 1.0


def plot_dose_response(wells: pd.DataFrame, dose_response: pd.DataFrame,
                       comparisons: pd.DataFrame | None = None,
                       metrics=("frac_killed", "frac_cell_in_cell", "kill_rate_per_effector_h"),
                       width_mm: float = 180.0):
    """Dose-response per compound (rows) and metric (columns) with the 4PL fit and EC50.

    The control wells are drawn at one tenth of the lowest dose, marked "0".

    Returns
    -------
    matplotlib.figure.Figure
    """
    control = _control(comparisons)
    compounds = sorted(dose_response["compound"].unique()) if len(dose_response) else []
    metrics = [m for m in metrics if m in wells.columns]
    nrow = max(len(compounds), 1)
    fig, axes = figure(width_mm, 55 * nrow, nrow, len(metrics))
    ctrl = wells[wells["condition"] == control] if control else wells.iloc[:0]
    for i, comp in enumerate(compounds):
        g = wells[(wells["compound"] == comp) & (wells["dose"] > 0)]
        zero = _dose_axis_zero(g["dose"].to_numpy(float))
        unit = g["dose_unit"].iloc[0] if len(g) else ""
        for j, m in enumerate(metrics):
            ax = axes[i][j]
            x = np.concatenate([np.full(len(ctrl), zero), g["dose"].to_numpy(float)])
            y = np.concatenate([ctrl[m].to_numpy(float), g[m].to_numpy(float)])
            ax.scatter(x, y, s=12, color="0.25", zorder=3, label="wells")
            ax.set_xscale("log")
            fit = dose_response[(dose_response["compound"] == comp)
                                & (dose_response["metric"] == m)]
            text = "not fitted"
            if len(fit) and bool(fit["fitted"].iloc[0]):
                f = fit.iloc[0]
                xs = np.geomspace(zero, g["dose"].max() * 3, 200)
                ax.plot(xs, logistic4(xs, f["bottom"], f["top"], np.log10(f["ec50"]), f["hill"]),
                        color=sns.color_palette("colorblind")[0], lw=1.2, label="4PL fit")
                if np.isfinite(f["ec50_ci_low"]):
                    ax.axvline(f["ec50"], color="0.5", ls="--", lw=0.8)
                    text = (f"EC50 {f['ec50']:.2g} {unit}\n"
                            f"95% CI {f['ec50_ci_low']:.2g}-{f['ec50_ci_high']:.2g}")
                else:
                    text = "EC50 not determined"
            elif len(fit):
                text = "not fitted: too few doses" if "dose levels" in fit["note"].iloc[0] \
                    else "not fitted"
            ticks = sorted(set(g["dose"].astype(float)))
            ax.set_xticks([zero, *ticks], ["0", *[f"{t:g}" for t in ticks]])
            ax.minorticks_off()
            ax.set_xlabel(f"{comp} ({unit})")
            ax.set_ylabel(METRICS[m][0].replace(" (fraction of contacted, resolved targets)",
                                                " (fraction)").replace(
                " (fraction of contacted, resolved)", " (fraction)"))
            ax.set_title(f"{text.replace(chr(10), ' ')}\n(n = {len(x)} wells)", fontsize=7)
    return fig


_WELL = re.compile(r"^([A-Za-z]+)0*(\d+)$")


def plot_plate_heatmap(wells: pd.DataFrame, metric: str = "frac_killed", width_mm: float = 120.0):
    """Heatmap of a well metric on the plate layout (one panel per plate).

    Returns
    -------
    matplotlib.figure.Figure
    """
    plates = sorted(wells["plate"].unique())
    fig, axes = figure(width_mm, 70 * len(plates), len(plates), 1)
    for ax, plate in zip(axes[:, 0], plates, strict=False):
        g = wells[wells["plate"] == plate]
        parsed = g["well"].str.extract(_WELL)
        d = pd.DataFrame({"row": parsed[0].str.upper(), "col": pd.to_numeric(parsed[1]),
                          "v": g[metric].to_numpy(float)}).dropna(subset=["row", "col"])
        grid = d.pivot_table(index="row", columns="col", values="v", aggfunc="mean",
                             dropna=False)
        sns.heatmap(grid, ax=ax, annot=True, fmt=".2f", cmap="viridis", annot_kws={"size": 7},
                    cbar_kws={"label": METRICS.get(metric, (metric,))[0]}, linewidths=0.5,
                    linecolor="white", square=True)
        ax.set_title(f"plate {plate}: {metric} (n = {grid.notna().sum().sum()} wells)")
        ax.set_xlabel("column")
        ax.set_ylabel("row")
        ax.tick_params(axis="y", rotation=0)
    return fig


def no_data(ax, what: str) -> None:
    """Mark an axis as empty: a centred "no <what>" note instead of a plot."""
    ax.text(0.5, 0.5, f"no {what}", ha="center", va="center", transform=ax.transAxes,
            color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_encounter_durations(encounters: pd.DataFrame, width_mm: float = 120.0):
    """Distribution (ECDF) of contact durations by encounter outcome.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = figure(width_mm, 70)
    ax = axes[0][0]
    if encounters["duration_min"].notna().sum() == 0:
        no_data(ax, "encounters in this study")
        return fig
    order = [o for o in ["kill", "cell_in_cell", "evasion", "trogocytosis_only", "censored"]
             if o in set(encounters["outcome"])]
    counts = encounters["outcome"].value_counts()
    data = encounters.assign(outcome=encounters["outcome"].map(
        lambda o: f"{o} (n={counts[o]})"))
    sns.ecdfplot(data=data, x="duration_min", hue="outcome", ax=ax,
                 hue_order=[f"{o} (n={counts[o]})" for o in order], palette="colorblind")
    ax.set_xlabel("contact duration (min)")
    ax.set_ylabel("cumulative fraction of encounters")
    if ax.get_legend() is not None:
        ax.get_legend().set_title("encounter outcome")
        ax.get_legend().set_frame_on(False)
    return fig


def plot_qc(frame_counts: pd.DataFrame, track_lengths: pd.DataFrame, width_mm: float = 180.0):
    """QC: cells per frame (one line per site) and track durations, per population.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = figure(width_mm, 65, 1, 2)
    if frame_counts.empty:
        no_data(axes[0][0], "cells detected")
        no_data(axes[0][1], "tracks in this study")
        return fig
    fc = frame_counts.assign(site=frame_counts["plate"] + "/" + frame_counts["well"] + "/"
                             + frame_counts["field"])
    n_sites = fc["site"].nunique()
    sns.lineplot(data=fc, x="time_min", y="n_cells", hue="population", units="site",
                 estimator=None, lw=0.6, alpha=0.6, ax=axes[0][0], palette="colorblind")
    axes[0][0].set_xlabel("time (min)")
    axes[0][0].set_ylabel("cells per frame")
    axes[0][0].set_title(f"cells per frame (n = {n_sites} sites, one line each)")
    if track_lengths.empty:
        no_data(axes[0][1], "tracks in this study")
        return fig
    n_tr = track_lengths["population"].value_counts()
    tl = track_lengths.assign(population=track_lengths["population"].map(
        lambda p: f"{p} (n={n_tr[p]} tracks)"))
    sns.histplot(data=tl, x="duration_min", hue="population", element="step", fill=False,
                 stat="density", common_norm=False, ax=axes[0][1], palette="colorblind",
                 binwidth=(bw := max(float(track_lengths["duration_min"].max()) / 30, 1.0)),
                 binrange=(0.0, max(float(track_lengths["duration_min"].max()), bw)))
    axes[0][1].set_xlabel("track duration (min)")
    axes[0][1].set_ylabel("density (1/min)")
    axes[0][1].set_title("track lengths")
    for ax in axes[0]:
        if ax.get_legend() is not None:
            ax.get_legend().set_frame_on(False)
    return fig


#: figure name -> (plot function, tables it reads)
#: Figure name -> (plot function, tables it is drawn from; see catalog.FIGURE_TABLES).
FIGURES = {name: (globals()[f"plot_{name}"], tables) for name, tables in FIGURE_TABLES.items()}
