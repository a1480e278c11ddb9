"""Check one site's raw movie pixel by pixel and write a QC summary (JSON)."""

import json

from livescreen.imageio import Movie, atomic_path, inspect_movie
from livescreen.logs import script_logging

log = script_logging(snakemake.log[0])
with Movie(snakemake.input.image) as movie:
    log.info("%s: shape %s (T, C, Y, X), %s", movie.path, movie.shape, movie.dtype)
    summary = inspect_movie(movie, snakemake.params.channels)
for warning in summary["warnings"]:
    log.warning("%s: %s", snakemake.input.image, warning)
with atomic_path(snakemake.output.qc) as tmp:
    tmp.write_text(json.dumps(summary, indent=1))
