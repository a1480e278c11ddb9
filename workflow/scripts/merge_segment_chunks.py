"""Join the segmentation pieces of a site into its labels, QC and montage."""

from livescreen.logs import script_logging
from livescreen.segment import merge_segment_chunks

log = script_logging(snakemake.log[0])
merge_segment_chunks(snakemake.input.labels, snakemake.input.qc, snakemake.input.image,
                     snakemake.output.labels, snakemake.output.qc, snakemake.output.montage,
                     snakemake.params.config, snakemake.wildcards.population)
