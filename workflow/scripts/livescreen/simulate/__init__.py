"""Simulated co-culture time-lapses with complete ground truth.

>>> from livescreen.simulate import params_for_site, simulate_site, write_site
>>> params = params_for_site(config["simulate"], config["imaging"], sample)  # doctest: +SKIP
>>> site = simulate_site(params, seed=site_seed(config["simulate"]["seed"], "P1", "B02", 1))
...                                                                          # doctest: +SKIP
>>> write_site(site, "image.ome.tif", "truth/", config["imaging"])          # doctest: +SKIP

The model is described in docs/simulator.md; :mod:`.params` (config ->
parameters, Hill dose response), :mod:`.model` (agents, encounters, labels),
:mod:`.render` (image formation), :mod:`.truth` (tables).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from livescreen.simulate.model import STATE_NAMES, run_model
from livescreen.simulate.params import (
    DEFAULTS,
    OUTCOMES,
    SimulationParams,
    hill,
    outcome_probabilities,
    params_for_site,
    site_seed,
)
from livescreen.simulate.render import form_image
from livescreen.simulate.truth import (
    encounters_table,
    events_table,
    fates_table,
    incidental_contacts,
    tracks_table,
)

__all__ = ["DEFAULTS", "OUTCOMES", "STATE_NAMES", "SimulatedSite", "SimulationParams", "hill",
           "outcome_probabilities", "params_for_site", "simulate_site", "site_seed",
           "write_site", "TRUTH_FILES"]

log = logging.getLogger(__name__)

#: Files written by :func:`write_site` into the truth directory.
TRUTH_FILES = ("labels_target.tif", "labels_effector.tif", "tracks.parquet",
               "encounters.parquet", "fates.parquet", "events.parquet", "truth.json")


@dataclass
class SimulatedSite:
    """One simulated site: movie, ground-truth labels and tables.

    Attributes
    ----------
    movie : numpy.ndarray
        (T, C, Y, X) uint16, channels in ``params.channels`` order.
    labels : dict
        ``"target"`` and ``"effector"`` -> (T, Y, X) uint32; value = track_id, 0 = background.
    tracks, encounters, fates, events : pandas.DataFrame
        Ground-truth tables (columns in docs/simulator.md).
    truth_rates : dict
        Probabilities and rates used at this site.
    params : SimulationParams
    seed : int
    qc : dict
        Model diagnostics (frames cell-in-cell waited for a host, dropped encounters,
        incidental contacts, counts).
    """

    movie: np.ndarray
    labels: dict
    tracks: pd.DataFrame
    encounters: pd.DataFrame
    fates: pd.DataFrame
    events: pd.DataFrame
    truth_rates: dict
    params: SimulationParams
    seed: int
    qc: dict = field(default_factory=dict)


def simulate_site(params: SimulationParams, seed: int) -> SimulatedSite:
    """Simulate one site deterministically from ``seed``.

    Parameters
    ----------
    params : SimulationParams
        From :func:`params_for_site`.
    seed : int
        Non-negative integer; same seed and params give identical arrays and tables.

    Returns
    -------
    SimulatedSite
    """
    t0 = time.perf_counter()
    rng_model, rng_image = (np.random.default_rng(s) for s in
                            np.random.SeedSequence(int(seed)).spawn(2))
    site = run_model(params, rng_model)
    tracks = tracks_table(site)
    encounters = encounters_table(site)
    fates = fates_table(site)
    events = events_table(site, tracks, encounters, fates)
    movie = form_image(site.val, params.channels, params.cfg["render"], params.pixel_size_um,
                       params.frame_interval_min, rng_image)
    qc = dict(site.qc)
    qc.update({
        "n_target_tracks": int(len(fates)),
        "n_effector_tracks": int(tracks.loc[tracks["population"] == "effector",
                                            "track_id"].nunique()),
        "n_contacted": int(fates["contacted"].sum()),
        "outcomes": {str(k): int(v) for k, v in sorted(fates["outcome"].value_counts().items())},
        "incidental_contacts": incidental_contacts(site.lab, encounters),
        "seconds": round(time.perf_counter() - t0, 3)})
    log.info("simulated %s/%s/%s (%s %g uM): %d target tracks, %d contacted, %.2f s",
             params.sample.get("plate"), params.sample.get("well"), params.sample.get("field"),
             params.compound, params.dose_um, qc["n_target_tracks"], qc["n_contacted"],
             qc["seconds"])
    return SimulatedSite(movie=movie, labels=dict(site.lab), tracks=tracks,
                         encounters=encounters, fates=fates, events=events,
                         truth_rates=params.truth_rates(), params=params, seed=int(seed), qc=qc)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def truth_record(site: SimulatedSite) -> dict:
    """The content of ``truth.json``: seed, sample, rates, parameters, QC counts."""
    p = site.params
    qc = {k: v for k, v in site.qc.items() if k != "seconds"}
    return _jsonable({
        "seed": site.seed, "sample": p.sample, "truth_rates": site.truth_rates,
        "params": {"height_px": p.height_px, "width_px": p.width_px, "n_frames": p.n_frames,
                   "pixel_size_um": p.pixel_size_um,
                   "frame_interval_min": p.frame_interval_min,
                   "channels": list(p.channels), "simulate": p.cfg},
        "qc": qc})


def write_site(site: SimulatedSite, image_path: str | PathLike, truth_dir: str | PathLike,
               imaging: dict) -> None:
    """Write the movie (OME-TIFF) and the ground truth, each file atomically.

    Parameters
    ----------
    site : SimulatedSite
    image_path : str or path-like
        Destination ``*.ome.tif`` (axes TCYX, zlib, physical sizes in um, time in min).
    truth_dir : str or path-like
        Directory for :data:`TRUTH_FILES` (created if needed).
    imaging : dict
        ``imaging`` config (pixel size, frame interval).
    """
    from livescreen.imageio import atomic_path, write_labels, write_movie
    from livescreen.tables import write_table

    truth_dir = Path(truth_dir)
    truth_dir.mkdir(parents=True, exist_ok=True)
    prov = {"simulate_seed": site.seed}
    for name in ("tracks", "encounters", "fates", "events"):
        write_table(getattr(site, name), truth_dir / f"{name}.parquet", None, prov)
    for pop in ("target", "effector"):
        write_labels(truth_dir / f"labels_{pop}.tif", site.labels[pop])
    with atomic_path(truth_dir / "truth.json") as tmp:
        tmp.write_text(json.dumps(truth_record(site), indent=1, sort_keys=True) + "\n")
    write_movie(image_path, site.movie, float(imaging["pixel_size_um"]),
                float(imaging["frame_interval_min"]), list(site.params.channels))
