"""Simulator ground truth as study tables (the perfect-scorer case).

Used by the tests and benchmarks of the statistics: the truth tables have
the same columns and vocabulary as the event-scoring output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from livescreen.simulate import params_for_site, site_seed
from livescreen.simulate.model import run_model
from livescreen.simulate.truth import encounters_table, fates_table, tracks_table
from livescreen.stats.aggregate import combine_sites, effectors_from_encounters, follow_up


def truth_site(sim_cfg: Mapping[str, Any], imaging: Mapping[str, Any],
               sample: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """Truth tables of one simulated site, without rendering the movie.

    Same model random stream as :func:`livescreen.simulate.simulate_site`
    (first of two streams spawned from ``seed``), so the tables are those the
    workflow's ``simulate_site`` rule would write.

    Returns
    -------
    dict
        ``tracks``, ``encounters``, ``fates`` (with site keys) and ``truth_rates``.
    """
    params = params_for_site(sim_cfg, imaging, sample)
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)).spawn(2)[0])
    site = run_model(params, rng)
    keys = {k: str(sample[k]) for k in ("plate", "well", "field")}
    tracks = tracks_table(site).assign(**keys)
    encounters = encounters_table(site).assign(**keys)
    fates = fates_table(site).assign(**keys)
    step = float(imaging["frame_interval_min"])
    fates["first_contact_min"] = fates["first_contact_frame"].where(
        fates["first_contact_frame"] >= 0).astype(float) * step
    return {"tracks": tracks, "encounters": encounters, "fates": fates,
            "truth_rates": params.truth_rates()}


def truth_screen(sim_cfg: Mapping[str, Any], imaging: Mapping[str, Any],
                 samples: pd.DataFrame, base_seed: int) -> dict[str, Any]:
    """Truth tables of every site of a sample sheet, as study tables.

    Parameters
    ----------
    sim_cfg, imaging : mapping
        ``simulate`` and ``imaging`` config sections.
    samples : pandas.DataFrame
        Sample sheet (one row per site).
    base_seed : int
        ``simulate.seed``; site seeds derive from it as in the workflow.

    Returns
    -------
    dict
        ``fates`` (joined with the sheet, with follow-up), ``encounters``,
        ``effectors``, ``tracks`` and ``truth`` (one row per condition with the
        configured outcome probabilities).
    """
    sites = [truth_site(sim_cfg, imaging, row,
                        site_seed(base_seed, row["plate"], row["well"], row["field"]))
             for row in samples.to_dict("records")]
    tracks = pd.concat([s["tracks"] for s in sites], ignore_index=True)
    encounters = combine_sites([s["encounters"] for s in sites], samples)
    fates = combine_sites([s["fates"] for s in sites], samples)
    fates = follow_up(fates, tracks[tracks["population"] == "target"])
    effectors = effectors_from_encounters(
        encounters, tracks[tracks["population"] == "effector"],
        float(imaging["frame_interval_min"]))
    truth = pd.DataFrame([{"condition": row["condition"], **s["truth_rates"]}
                          for row, s in zip(samples.to_dict("records"), sites, strict=False)])
    truth = truth.drop_duplicates("condition").set_index("condition")
    return {"fates": fates, "encounters": encounters, "effectors": effectors,
            "tracks": tracks, "truth": truth}
