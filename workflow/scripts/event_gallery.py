"""Study-level event gallery: one PNG montage of example events per event type."""

from pathlib import Path

import pandas as pd
import tifffile

from livescreen.events import event_params
from livescreen.events.gallery import event_rows, example_tiles, montage, pick_examples
from livescreen.imageio import Movie
from livescreen.logs import script_logging

log = script_logging(snakemake.log[0])
g = event_params(snakemake.params.settings).gallery
imaging = snakemake.params.imaging
px = float(imaging["pixel_size_um"])
crop = max(16, int(round(g.crop_um / px)))
sites = snakemake.params.sites  # list of (plate, well, field, image)
for event, out in zip(snakemake.params.events, snakemake.output, strict=False):
    rows = []
    for plate, well, field, _ in sites:
        d = Path("results/sites", plate, well, field)
        r = event_rows(pd.read_parquet(d / "events/encounters.parquet"),
                       pd.read_parquet(d / "events/fates.parquet"), event)
        rows.append(r.assign(site=f"{plate}/{well}/{field}"))
    picked = pick_examples(pd.concat(rows, ignore_index=True), g.examples)
    examples = []
    for ex in picked.to_dict("records"):
        plate, well, field = ex["site"].split("/")
        image = next(s[3] for s in sites if (s[0], s[1], s[2]) == (plate, well, field))
        d = Path("results/sites", plate, well, field)
        with Movie(image) as movie:
            # target ids as the scorer repaired them (events/), effectors as tracked
            tl = tifffile.imread(d / "events" / "target_labels.tif")
            el = tifffile.imread(d / "track" / "effector_track_labels.tif")
            tiles = example_tiles(movie, tl, el,
                                  pd.read_parquet(d / "events" / "target_tracks.parquet"),
                                  imaging["channels"], ex, g.frames, crop,
                                  float(imaging["frame_interval_min"]))
        examples.append({**tiles, "label": f"{ex['site']} target {ex['target_track_id']}"})
    montage(examples, g.frames, crop, f"{event}: {len(examples)} example(s)", out)
    log.info("%s: %d examples -> %s", event, len(examples), out)
