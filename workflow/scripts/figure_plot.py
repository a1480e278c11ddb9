"""Draw one figure (snakemake.wildcards.name) from study tables only."""

from pathlib import Path

import pandas as pd

from livescreen.figures import FIGURES, save
from livescreen.figures.style import apply_style
from livescreen.logs import script_logging

log = script_logging(snakemake.log[0])
s = snakemake.params.settings
apply_style(s["palette"])
plot, names = FIGURES[snakemake.wildcards.name]
kwargs = {"metric": s["heatmap_metric"]} if snakemake.wildcards.name == "plate_heatmap" else {}
fig = plot(*[pd.read_parquet(snakemake.input[n]) for n in names], **kwargs)
stem = Path(snakemake.output.png).with_suffix("")
log.info("wrote %s", ", ".join(map(str, save(fig, stem, s["formats"], s["dpi"]))))
