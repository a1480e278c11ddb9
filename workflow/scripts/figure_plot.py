"""Draw one figure (snakemake.wildcards.name) from study tables only.

The figure carries the provenance of its tables (config and sample-sheet
hashes, git commit, package versions, each table's SHA-256) in its metadata.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from livescreen.figures import FIGURES, save
from livescreen.figures.style import apply_style
from livescreen.logs import script_logging
from livescreen.tables import figure_provenance

log = script_logging(snakemake.log[0])
s = snakemake.params.settings
apply_style(s["palette"])
# seaborn's stripplot jitter draws from NumPy's global generator: fix it so the
# same tables give the same bytes (docs/reproducibility.md).
np.random.seed(0)  # noqa: NPY002
plot, names = FIGURES[snakemake.wildcards.name]
kwargs = {"metric": s["heatmap_metric"]} if snakemake.wildcards.name == "plate_heatmap" else {}
fig = plot(*[pd.read_parquet(snakemake.input[n]) for n in names], **kwargs)
prov = {"figure": snakemake.wildcards.name,
        **figure_provenance({n: snakemake.input[n] for n in names})}
stem = Path(snakemake.output.png).with_suffix("")
log.info("wrote %s", ", ".join(map(str, save(fig, stem, s["formats"], s["dpi"], prov))))
