"""Per-well, per-condition, comparison, dose-response and plate-QC tables.

Sites excluded by the sheet's ``exclude`` column (see aggregate_tables.py) are
left out of the well design; they are named in every table's provenance.
Also writes the run's provenance record (``provenance.json``) for the report.
"""

import json
from pathlib import Path

import pandas as pd

from livescreen import study, tables
from livescreen.imageio import atomic_path
from livescreen.logs import script_logging
from livescreen.stats import schemas
from livescreen.stats.pipeline import analyse

log = script_logging(snakemake.log[0])
samples = pd.read_parquet(snakemake.input.samples)
excluded = study.excluded_sites(samples)
prov = {**tables.provenance(snakemake.config, snakemake.config["samples"]),
        "excluded_sites": excluded}
out = analyse(pd.read_parquet(snakemake.input.fates), pd.read_parquet(snakemake.input.effectors),
              study.included(samples), snakemake.params.control, snakemake.params.settings)
models = {"wells": schemas.Wells, "conditions": schemas.Conditions,
          "comparisons": schemas.Comparisons, "dose_response": schemas.DoseResponse,
          "plate_qc": schemas.PlateQC}
for name, model in models.items():
    tables.write_table(out[name], snakemake.output[name], model, prov)
    log.info("%s: %d rows", name, len(out[name]))
# The study tables this job read and wrote.
paths = [*snakemake.input, *(snakemake.output[name] for name in models)]
record = {**prov, "packages": tables.package_versions(), "config": snakemake.config,
          "tables_sha256": {Path(p).name: tables.file_sha256(p) for p in sorted(paths)}}
with atomic_path(snakemake.output.provenance) as tmp:
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True, default=str) + "\n")
