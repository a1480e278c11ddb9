"""Join per-site encounters, fates and effectors with the sample sheet; QC tables."""

import pandas as pd

from livescreen import stats, tables
from livescreen.logs import script_logging
from livescreen.stats import schemas

log = script_logging(snakemake.log[0])
samples = pd.read_parquet(snakemake.input.samples)
prov = tables.provenance(snakemake.config, snakemake.config["samples"])
tracks = pd.concat([pd.read_parquet(p, columns=["plate", "well", "field", "population", "track_id",
                                                "frame", "time_min"])
                    for p in snakemake.input.tracks], ignore_index=True)
encounters = stats.combine_sites(map(pd.read_parquet, snakemake.input.encounters), samples)
fates = stats.combine_sites(map(pd.read_parquet, snakemake.input.fates), samples)
fates = stats.follow_up(fates, tracks[tracks["population"] == "target"])
effectors = stats.combine_sites(map(pd.read_parquet, snakemake.input.effectors), samples)
frame_counts, track_lengths = stats.qc_tables(tracks)
tables.write_table(encounters, snakemake.output.encounters, schemas.Encounters, prov)
tables.write_table(fates, snakemake.output.fates, schemas.Fates, prov)
tables.write_table(effectors, snakemake.output.effectors, None, prov)
tables.write_table(frame_counts, snakemake.output.frame_counts, schemas.FrameCounts, prov)
tables.write_table(track_lengths, snakemake.output.track_lengths, schemas.TrackLengths, prov)
log.info("%d encounters, %d target fates, %d effectors from %d sites", len(encounters),
         len(fates), len(effectors), len(snakemake.input.fates))
