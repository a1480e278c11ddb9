# Figures, from the study tables alone (no images, no upstream stages).
# Included by the main Snakefile and by the stand-alone entry point
# workflow/figures.smk, which redraws the figures of archived tables:
#   snakemake -s workflow/figures.smk --cores 1 --config tables_dir=path/to/tables figures_dir=path/to/figures
# 'snakemake figures' (main Snakefile) rebuilds every figure of results/tables.
import os

from livescreen.figures.catalog import FIGURE_TABLES, figure_paths
from livescreen.figures.catalog import settings as figure_settings

TABLES_DIR = config.get("tables_dir", "results/tables")
FIGURES_DIR = config.get("figures_dir", "results/figures")
FIGURE_SETTINGS = figure_settings(config.get("figures"))


report: "../report/workflow.rst"


rule figures:
    input:
        figure_paths(FIGURES_DIR, FIGURE_SETTINGS["formats"]),
    localrule: True


rule figure:
    input:
        unpack(lambda wc: {t: os.path.join(TABLES_DIR, f"{t}.parquet")
                       for t in FIGURE_TABLES[wc.name]}),
    output:
        png=report(os.path.join(FIGURES_DIR, "{name}.png"), caption="../report/figure.rst",
                   category="Figures"),
        other=[os.path.join(FIGURES_DIR, f"{{name}}.{fmt}") for fmt in FIGURE_SETTINGS["formats"]
               if fmt != "png"],
    wildcard_constraints:
        name="|".join(FIGURE_TABLES),
    log:
        "logs/figures/{name}.log",
    benchmark:
        "benchmarks/figures/{name}.tsv"
    params:
        settings=FIGURE_SETTINGS,
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/livescreen.yaml"
    script:
        "../scripts/figure_plot.py"
