"""Write the validated sample sheet as results/tables/samples.parquet."""

from livescreen import study, tables
from livescreen.logs import script_logging

log = script_logging(snakemake.log[0])
sheet = study.read_sample_sheet(snakemake.input.sheet)
table = study.sheet_table(sheet)
tables.write_table(table, snakemake.output.table, tables.SampleSheet,
                   tables.provenance(snakemake.config, snakemake.input.sheet))
log.info("%d sites, %d conditions written to %s", len(table), table["condition"].nunique(),
         snakemake.output.table)
