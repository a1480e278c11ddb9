"""Score one site's events: track labels + tracks + movie -> encounters, fates, effectors."""

import pandas as pd
import tifffile

from livescreen.events import event_params, score_labels, write_events
from livescreen.imageio import Movie
from livescreen.logs import script_logging

log = script_logging(snakemake.log[0])
w, inp = snakemake.wildcards, snakemake.input
params = event_params(snakemake.params.settings)
with Movie(inp.image) as movie:
    tables = score_labels(tifffile.imread(inp.target_labels), tifffile.imread(inp.effector_labels),
                          movie, pd.read_parquet(inp.target_tracks),
                          pd.read_parquet(inp.effector_tracks), imaging=snakemake.params.imaging,
                          params=params, plate=w.plate, well=w.well, field=w.field)
write_events(tables, snakemake.output, {"events": params.model_dump()})
