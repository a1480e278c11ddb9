"""Fetch a Cellpose built-in model into segment.models_dir (rule fetch_cellpose_model)."""

from livescreen.logs import script_logging
from livescreen.segment import fetch_builtin

log = script_logging(snakemake.log[0])
fetch_builtin(snakemake.params.name, snakemake.output.model)
