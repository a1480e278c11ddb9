"""Join per-site encounters, fates and effectors with the sample sheet; QC tables.

Sites excluded by the sheet's ``exclude`` column are not read; they are listed
with their reason in ``missing_sites.parquet`` and in every table's provenance.
"""

import pandas as pd

from livescreen import stats, study, tables
from livescreen.logs import script_logging
from livescreen.stats import schemas

log = script_logging(snakemake.log[0])
samples = pd.read_parquet(snakemake.input.samples)
excluded = dict(snakemake.params.excluded)
prov = {**tables.provenance(snakemake.config, snakemake.config["samples"]),
        "excluded_sites": excluded}
tracks = pd.concat([pd.read_parquet(p, columns=["plate", "well", "field", "population", "track_id",
                                                "frame", "time_min"])
                    for p in snakemake.input.tracks], ignore_index=True)
kept = study.included(samples)
encounters = stats.combine_sites(map(pd.read_parquet, snakemake.input.encounters), kept)
fates = stats.combine_sites(map(pd.read_parquet, snakemake.input.fates), kept)
fates = stats.follow_up(fates, tracks[tracks["population"] == "target"])
effectors = stats.combine_sites(map(pd.read_parquet, snakemake.input.effectors), kept)
frame_counts, track_lengths = stats.qc_tables(tracks)
missing = samples.loc[samples["site_id"].isin(excluded), ["site_id", "plate", "well", "field"]]
missing = missing.assign(reason=missing["site_id"].map(excluded)).reset_index(drop=True)
tables.write_table(encounters, snakemake.output.encounters, schemas.Encounters, prov)
tables.write_table(fates, snakemake.output.fates, schemas.Fates, prov)
tables.write_table(effectors, snakemake.output.effectors, None, prov)
tables.write_table(frame_counts, snakemake.output.frame_counts, schemas.FrameCounts, prov)
tables.write_table(track_lengths, snakemake.output.track_lengths, schemas.TrackLengths, prov)
tables.write_table(missing, snakemake.output.missing_sites, schemas.MissingSites, prov)
for site, reason in excluded.items():
    log.warning("site %s left out of the study tables (sample sheet 'exclude': %s)", site, reason)
log.info("%d encounters, %d target fates, %d effectors from %d sites (%d excluded)",
         len(encounters), len(fates), len(effectors), len(snakemake.input.fates), len(excluded))
