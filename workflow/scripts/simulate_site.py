"""Simulate one site: sample-sheet row + config -> OME-TIFF movie and ground truth."""

from pathlib import Path

from livescreen.logs import script_logging
from livescreen.simulate import params_for_site, simulate_site, site_seed, write_site

log = script_logging(snakemake.log[0])
sample, sim, imaging = snakemake.params.sample, snakemake.params.simulate, snakemake.params.imaging
seed = site_seed(sim.get("seed", 0), sample["plate"], sample["well"], sample["field"])
params = params_for_site(sim, imaging, sample)
log.info("site %s/%s/%s: seed %d, outcome probabilities %s", sample["plate"], sample["well"],
         sample["field"], seed, params.outcome_probs)
site = simulate_site(params, seed)
write_site(site, snakemake.output.image, Path(snakemake.output.truth).parent, imaging)
log.info("truth: %s", site.qc)
