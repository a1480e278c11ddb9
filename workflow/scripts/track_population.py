"""Track one population of one site: labels + movie -> tracks table and track-id labels."""

import tifffile

from livescreen.imageio import Movie, write_labels
from livescreen.logs import script_logging
from livescreen.track import relabel_by_track, track_site, write_tracks
from livescreen.track_models import tracking_params

log = script_logging(snakemake.log[0])
w = snakemake.wildcards
labels = tifffile.imread(snakemake.input.labels)
params = tracking_params(w.population, snakemake.params.settings)
log.info("tracking %s with %s", w.population, params.model_dump())
with Movie(snakemake.input.image) as movie:
    table = track_site(labels, movie, params, imaging=snakemake.params.imaging, plate=w.plate,
                       well=w.well, field=w.field, population=w.population)
write_tracks(table, snakemake.output.tracks, {"tracking": params.model_dump()})
write_labels(snakemake.output.track_labels, relabel_by_track(labels, table))
log.info("wrote %d rows, %d tracks", len(table), table["track_id"].nunique())
