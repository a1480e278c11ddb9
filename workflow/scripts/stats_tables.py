"""Per-well, per-condition, comparison, dose-response and plate-QC tables."""

import pandas as pd

from livescreen import tables
from livescreen.logs import script_logging
from livescreen.stats import schemas
from livescreen.stats.pipeline import analyse

log = script_logging(snakemake.log[0])
prov = tables.provenance(snakemake.config, snakemake.config["samples"])
out = analyse(pd.read_parquet(snakemake.input.fates), pd.read_parquet(snakemake.input.effectors),
              pd.read_parquet(snakemake.input.samples), snakemake.params.control,
              snakemake.params.settings)
models = {"wells": schemas.Wells, "conditions": schemas.Conditions,
          "comparisons": schemas.Comparisons, "dose_response": schemas.DoseResponse,
          "plate_qc": schemas.PlateQC}
for name, model in models.items():
    tables.write_table(out[name], snakemake.output[name], model, prov)
    log.info("%s: %d rows", name, len(out[name]))
