# livescreen: live-cell imaging screens of immune attack on cancer cells.
# Run the embedded demo study with:  snakemake --cores 2   (see README.md)
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/study.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/segment.smk"
include: "workflow/rules/track.smk"
include: "workflow/rules/events.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/stats.smk"
include: "workflow/rules/figures.smk"


rule all:
    input:
        all_outputs(),
    default_target: True
