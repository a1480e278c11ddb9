"""Train a Cellpose model on annotated frames and score it (rule train_cellpose)."""

from livescreen.logs import script_logging
from livescreen.segment.training import train_and_validate

log = script_logging(snakemake.log[0])
train_and_validate(snakemake.params.train, snakemake.params.validation, snakemake.output.model,
                   snakemake.output.record, snakemake.params.config,
                   snakemake.wildcards.population, threads=snakemake.threads)
