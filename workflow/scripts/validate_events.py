"""Validate event scoring against the simulator's truth (workflow path and GT-label path)."""

from pathlib import Path

import pandas as pd

from livescreen.events import event_params
from livescreen.events.validate import read_truth, summarize, validate_gt_labels, validate_outputs
from livescreen.imageio import Movie
from livescreen.logs import script_logging
from livescreen.tables import write_table

log = script_logging(snakemake.log[0])
params = event_params(snakemake.params.settings)
imaging = snakemake.params.imaging
parts = []
for plate, well, field, image in snakemake.params.sites:
    site = {"plate": plate, "well": well, "field": field}
    truth = read_truth(Path("resources/simulated", plate, well, field, "truth"))
    d = Path("results/sites", plate, well, field)
    parts.append(validate_outputs(d / "events", d / "track", truth, imaging=imaging,
                                  params=params).assign(source="workflow", **site))
    with Movie(image) as movie:
        parts.append(validate_gt_labels(truth, movie, imaging=imaging,
                                        track_cfg=snakemake.params.track, params=params,
                                        **site).assign(source="gt_labels", **site))
matches = pd.concat(parts, ignore_index=True)
summary = summarize(matches, by=["source"])
log.info("event validation:\n%s", summary.to_string(index=False))
write_table(summary, snakemake.output.summary, None, {"events": params.model_dump()})
write_table(matches, snakemake.output.matches, None, {"events": params.model_dump()})
