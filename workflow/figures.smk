# Stand-alone entry point: redraw every figure from a folder of study tables
# (e.g. the tables archived with a paper), without images, sample sheet or
# upstream stages:
#   snakemake -s workflow/figures.smk --cores 1 --config tables_dir=archive/tables figures_dir=archive/figures
from snakemake.utils import min_version

min_version("9.0")


include: "rules/figures.smk"


rule all:
    input:
        rules.figures.input,
    default_target: True
