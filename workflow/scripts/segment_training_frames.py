"""Simulate annotated training/validation frames (rule simulate_training_frames)."""

from livescreen.logs import script_logging
from livescreen.segment.training import make_training_frames

log = script_logging(snakemake.log[0])
make_training_frames(snakemake.output.frames, snakemake.params.config,
                     snakemake.wildcards.population, snakemake.wildcards.split)
