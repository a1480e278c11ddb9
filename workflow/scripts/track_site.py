"""Track both populations of one site: labels + movie -> tracks tables and track-id labels."""

import tifffile

from livescreen.imageio import Movie, write_labels
from livescreen.logs import script_logging
from livescreen.track import relabel_by_track, track_site, write_tracks
from livescreen.track_models import tracking_params

log = script_logging(snakemake.log[0])
w, p = snakemake.wildcards, snakemake.params
with Movie(snakemake.input.image) as movie:
    for population, labels_in, tracks_out, labels_out in zip(
            p.populations, snakemake.input.labels, snakemake.output.tracks,
            snakemake.output.track_labels, strict=True):
        labels = tifffile.imread(labels_in)
        params = tracking_params(population, p.settings[population])
        log.info("tracking %s with %s", population, params.model_dump())
        table = track_site(labels, movie, params, imaging=p.imaging, plate=w.plate, well=w.well,
                           field=w.field, population=population)
        write_tracks(table, tracks_out, {"tracking": params.model_dump()})
        write_labels(labels_out, relabel_by_track(labels, table))
        log.info("%s: wrote %d rows, %d tracks", population, len(table),
                 table["track_id"].nunique())
