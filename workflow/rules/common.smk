# Shared set-up: config and sample-sheet validation, wildcard constraints and
# input functions. Loaded first by the Snakefile.
import json
import os
from pathlib import Path

import pandas as pd
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from livescreen import study
from livescreen.segment.site import chunk_ranges

CONFIG_SCHEMA = "../schemas/config.schema.yaml"
SAMPLES_SCHEMA = "../schemas/samples.schema.yaml"
POPULATIONS = ["target", "effector"]
#: Study-level tables written by the aggregate and stats stages.
STUDY_TABLES = ["encounters", "fates", "effectors", "wells", "conditions", "comparisons",
                "dose_response", "plate_qc"]


def _config_source():
    """Config file(s) given on the command line, else the default, for messages."""
    files = [str(f) for f in workflow.overwrite_configfiles or []]
    return ", ".join(files) or "config/config.yaml"


def _validate(data, schema, source):
    """Snakemake's validate(), with errors naming file, row and key."""
    try:
        validate(data, schema=schema)
    except WorkflowError as err:
        raise WorkflowError(study.explain_validation_error(err, source)) from None


#: Image headers read by earlier runs in this working directory, keyed by path
#: and valid while the file's size and mtime are unchanged: a rerun of a
#: 1,536-site plate does not re-open 1,536 movies just to plan.
HEADER_CACHE = Path(".snakemake", "livescreen", "image_headers.json")


def _file_stamp(path):
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


def _cached_headers(images):
    """Cached headers of the images that did not change since they were read."""
    try:
        entries = json.loads(HEADER_CACHE.read_text())
    except (OSError, ValueError):
        return {}
    headers = {}
    for image in set(images):
        entry = entries.get(image)
        try:
            if entry and entry["stamp"] == _file_stamp(image):
                headers[image] = study.ImageHeader(axes=entry["axes"], shape=tuple(entry["shape"]),
                                                   dtype=entry["dtype"])
        except (OSError, KeyError, TypeError):
            continue
    return headers


def _save_headers(headers):
    """Write the cache (atomically; a failure only costs re-reading next time)."""
    entries = {}
    for image, h in headers.items():
        try:
            entries[image] = {"stamp": _file_stamp(image), "axes": h.axes,
                              "shape": list(h.shape), "dtype": h.dtype}
        except OSError:
            continue
    try:
        HEADER_CACHE.parent.mkdir(parents=True, exist_ok=True)
        tmp = HEADER_CACHE.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(entries))
        os.replace(tmp, HEADER_CACHE)
    except OSError:
        pass


#: Headers of the movies read (or found in the cache) while loading the study.
_MOVIE_HEADERS = {}


def _load_study():
    """Validate config and sample sheet; return the sheet indexed by site."""
    _validate(config, CONFIG_SCHEMA, _config_source())
    try:
        study.check_channels(config["imaging"]["channels"])
        sheet = study.read_sample_sheet(config["samples"])
        _validate(sheet, SAMPLES_SCHEMA, config["samples"])
        study.check_sites(sheet, config["samples"], config["study"]["control_condition"])
        # Image headers are checked once, by the main process (not in every job);
        # headers of movies unchanged since the last run come from a cache.
        if workflow.is_main_process:
            # sites excluded in the sheet (e.g. a corrupt movie) are not opened
            kept = study.included(sheet)
            cached = _cached_headers(kept["image"])
            headers = study.check_images(
                kept, config["samples"], config["imaging"],
                simulate=config.get("simulate", {}).get("enabled", False), headers=cached)
            if headers.keys() - cached.keys():
                _save_headers(headers)
            _MOVIE_HEADERS.update(headers)
    except study.StudyDesignError as err:
        raise WorkflowError(str(err)) from None
    return sheet.set_index(list(study.SITE_KEYS), drop=False).sort_index()


samples = _load_study()
SIMULATE = config.get("simulate", {}).get("enabled", False)


wildcard_constraints:
    plate=study.wildcard_pattern(samples["plate"]),
    well=study.wildcard_pattern(samples["well"]),
    field=study.wildcard_pattern(samples["field"]),
    population="|".join(POPULATIONS),


# Per-site lookups as plain dicts: input functions run once per job, and a
# DataFrame lookup per call is slow at thousands of sites.
_SITE_ROWS = {
    tuple(str(row[k]) for k in study.SITE_KEYS): {
        k: (float(v) if k == "dose" else str(v)) for k, v in row.items()
    }
    for row in samples.to_dict("records")
}


def get_sample(wildcards):
    """The sample-sheet row of a site, as a plain dict (dose as float)."""
    return _SITE_ROWS[(wildcards.plate, wildcards.well, wildcards.field)]


def get_image(wildcards):
    """Path of a site's raw (T, C, Y, X) image, as named in the sample sheet."""
    return _SITE_ROWS[(wildcards.plate, wildcards.well, wildcards.field)]["image"]


def movie_n_frames(wildcards):
    """Frames (T) of a site's movie, from its header; for a movie the workflow is
    yet to simulate, ``simulate.n_frames``."""
    image = get_image(wildcards)
    header = _MOVIE_HEADERS.get(image)
    if header is None:
        if SIMULATE and not os.path.exists(image):
            from livescreen.simulate.params import DEFAULTS

            return int({**DEFAULTS, **config["simulate"]}["n_frames"])
        try:
            header = _MOVIE_HEADERS[image] = study.read_image_header(image)
        except study.StudyDesignError as err:
            raise WorkflowError(str(err)) from None
    axes = header.axes if len(header.axes) == len(header.shape) else "TCYX"
    return int(header.shape[axes.index("T")]) if "T" in axes else 1


def segment_chunk_paths(pattern):
    """Input function: ``pattern`` (with ``{chunk}``) for every frame range of a site
    and population, in frame order (segment.frames_per_job; rule merge_segment_chunks)."""

    def paths(wc):
        n = len(chunk_ranges(movie_n_frames(wc), SEGMENT["frames_per_job"]))
        return expand(pattern, chunk=[f"{i:04d}" for i in range(n)], **wc)

    return paths


# Sites processed: every row of the sheet without an 'exclude' reason.
_INCLUDED = study.included(samples)


def site_paths(pattern, populations=None):
    """Format ``pattern`` for every processed site (and population), sheet order."""
    return study.format_sites(_INCLUDED, pattern, populations)


def site_images():
    """Raw image paths of every processed site."""
    return [str(v) for v in _INCLUDED["image"]]


def site_records():
    """(plate, well, field, image) of every processed site, in sample-sheet order."""
    return [(str(r.plate), str(r.well), str(r.field), str(r.image))
            for r in _INCLUDED.itertuples(index=False)]


def all_outputs():
    """Final targets of the workflow: every stage's outputs for every site."""
    site = "results/sites/{plate}/{well}/{field}"
    targets = ["results/tables/samples.parquet"]
    targets += site_paths("results/qc/images/{plate}/{well}/{field}.json")
    targets += site_paths(f"{site}/segment/{{population}}_montage.png", POPULATIONS)
    targets += site_paths(f"{site}/track/{{population}}_tracks.parquet", POPULATIONS)
    targets += site_paths(f"{site}/events/fates.parquet")
    targets += [f"results/tables/{name}.parquet" for name in STUDY_TABLES]
    targets += figure_paths(FIGURES_DIR, FIGURE_SETTINGS["formats"])
    targets += [f"results/figures/gallery/{event}.png" for event in EVENT_GALLERY_TYPES]
    if SIMULATE:
        targets.append("results/validation/events.parquet")
    return targets
