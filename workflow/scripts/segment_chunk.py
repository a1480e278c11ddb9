"""Segment a range of frames of one population of one site (rule segment_chunk)."""

from livescreen.logs import script_logging
from livescreen.segment import segment_site

log = script_logging(snakemake.log[0])
segment_site(snakemake.input.image, snakemake.input.model, snakemake.output.labels,
             snakemake.output.qc, None, snakemake.params.config, snakemake.wildcards.population,
             threads=snakemake.threads, frames=tuple(snakemake.params.frames))
