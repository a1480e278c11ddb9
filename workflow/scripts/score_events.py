"""Score one site's events: track labels + tracks + movie -> encounters, fates, effectors."""

import pandas as pd
import tifffile

from livescreen.events import event_params, score_labels, write_events
from livescreen.imageio import Movie, write_labels
from livescreen.logs import script_logging
from livescreen.track import write_tracks

log = script_logging(snakemake.log[0])
w, inp = snakemake.wildcards, snakemake.input
params = event_params(snakemake.params.settings)
with Movie(inp.image) as movie:
    tables = score_labels(tifffile.imread(inp.target_labels), tifffile.imread(inp.effector_labels),
                          movie, pd.read_parquet(inp.target_tracks),
                          pd.read_parquet(inp.effector_tracks), imaging=snakemake.params.imaging,
                          params=params, plate=w.plate, well=w.well, field=w.field)
write_events(tables, snakemake.output, {"events": params.model_dump()})
# Target ids after the scorer's identity repairs, for the gallery and validation.
write_labels(snakemake.output.target_labels, tables["target_labels"])
write_tracks(tables["target_tracks"], snakemake.output.target_tracks,
             {"events": params.model_dump()})
