# Segmentation (Cellpose 3): one label stack per site and population, with a
# per-frame QC table and a montage for the report. The model of each
# population (segment.populations.<p>.model) is a Cellpose built-in (fetched
# once by a local rule, so compute jobs never download), a custom weights file,
# or 'train': trained by the workflow on annotated frames (simulated ones for
# the demo, with seeds no screen site uses). See docs/segmentation.md.
import os
import re

from livescreen.segment import BUILTIN_MODELS, SegmentationError, segment_settings
from livescreen.segment import rules as segment_rules

# A bad segment setting (unknown model, missing file) fails when the workflow is
# parsed, with the config key in the message.
try:
    SEGMENT = segment_settings(config)
    segment_rules.check_models(config)
except SegmentationError as err:
    raise WorkflowError(str(err)) from None
# What segment and training jobs read from config (a change reruns them).
SEGMENT_CONFIG = {"imaging": config["imaging"], "segment": config.get("segment") or {}}


rule fetch_cellpose_model:
    output:
        model=os.path.join(SEGMENT["models_dir"], "{cellpose_model}"),
    wildcard_constraints:
        cellpose_model="|".join(re.escape(v) for v in BUILTIN_MODELS.values()),
    params:
        name=lambda wc: {v: k for k, v in BUILTIN_MODELS.items()}[wc.cellpose_model],
    log:
        "logs/segment/fetch_{cellpose_model}.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=500,
        runtime=15,
    conda:
        "../../envs/cellpose.yaml"
    script:
        "../scripts/fetch_model.py"


rule simulate_training_frames:
    output:
        frames=directory("resources/training/{population}/{split}"),
    wildcard_constraints:
        split="train|validation",
    params:
        config={
            "imaging": config["imaging"],
            "simulate": config.get("simulate") or {},
            "segment": {"training": SEGMENT["training"]},
        },
    log:
        "logs/segment/training_frames/{population}_{split}.log",
    benchmark:
        "benchmarks/segment/training_frames/{population}_{split}.tsv"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=15,
    conda:
        "../../envs/cellpose.yaml"
    script:
        "../scripts/segment_training_frames.py"


rule train_cellpose:
    input:
        train=lambda wc: segment_rules.training_files(config, wc.population, "train"),
        validation=lambda wc: segment_rules.training_files(config, wc.population, "validation"),
        initial=lambda wc: segment_rules.initial_model(config, wc.population),
    output:
        model=os.path.join(SEGMENT["models_dir"], "trained", "{population}.pth"),
        record=os.path.join(SEGMENT["models_dir"], "trained", "{population}.json"),
    params:
        train=lambda wc: segment_rules.training_source(config, wc.population, "train"),
        validation=lambda wc: segment_rules.training_source(config, wc.population, "validation"),
        config=SEGMENT_CONFIG,
    log:
        "logs/segment/train/{population}.log",
    benchmark:
        "benchmarks/segment/train/{population}.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
    conda:
        "../../envs/cellpose.yaml"
    script:
        "../scripts/train_cellpose.py"


# A site's segmentation outputs, written by segment_population or (a movie split
# by frames) merge_segment_chunks; the pieces of a split movie.
SEGMENT_OUTPUTS = {
    "labels": "results/sites/{plate}/{well}/{field}/segment/{population}_labels.tif",
    "qc": "results/sites/{plate}/{well}/{field}/segment/{population}_qc.parquet",
    "montage": report(
        "results/sites/{plate}/{well}/{field}/segment/{population}_montage.png",
        caption="../report/segment_montage.rst",
        category="Segmentation",
        subcategory="{population}",
        labels={"site": "{plate}/{well}/{field}", "population": "{population}"},
    ),
}
CHUNKS_DIR = "results/sites/{plate}/{well}/{field}/segment/chunks"
CHUNK_LABELS = os.path.join(CHUNKS_DIR, "{population}_{chunk}_labels.tif")
CHUNK_QC = os.path.join(CHUNKS_DIR, "{population}_{chunk}_qc.parquet")


# With segment.frames_per_job set, a movie is segmented in frame ranges, one
# job each (segment_chunk), joined by merge_segment_chunks into the same
# outputs segment_population writes; otherwise one job per site and population.
if SEGMENT["frames_per_job"]:

    rule segment_chunk:
        input:
            image=get_image,
            image_qc="results/qc/images/{plate}/{well}/{field}.json",
            model=lambda wc: segment_rules.model_path(config, wc.population),
        output:
            labels=temp(CHUNK_LABELS),
            qc=temp(CHUNK_QC),
        wildcard_constraints:
            chunk=r"\d{4}",
        params:
            config=SEGMENT_CONFIG,
            frames=lambda wc: chunk_ranges(
                movie_n_frames(wc), SEGMENT["frames_per_job"])[int(wc.chunk)],
        log:
            "logs/segment/{plate}/{well}/{field}/{population}_{chunk}.log",
        benchmark:
            "benchmarks/segment/{plate}/{well}/{field}/{population}_{chunk}.tsv"
        threads: 2
        resources:
            mem_mb=4000,
            runtime=60,
        conda:
            "../../envs/cellpose.yaml"
        script:
            "../scripts/segment_chunk.py"

    rule merge_segment_chunks:
        input:
            labels=segment_chunk_paths(CHUNK_LABELS),
            qc=segment_chunk_paths(CHUNK_QC),
            image=get_image,
        output:
            **SEGMENT_OUTPUTS,
        params:
            config=SEGMENT_CONFIG,
        log:
            "logs/segment/{plate}/{well}/{field}/{population}.log",
        benchmark:
            "benchmarks/segment/{plate}/{well}/{field}/{population}.tsv"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=20,
        conda:
            "../../envs/livescreen.yaml"
        script:
            "../scripts/merge_segment_chunks.py"

else:

    rule segment_population:
        input:
            image=get_image,
            # segment only movies that passed the image check (NaN, black, ...)
            image_qc="results/qc/images/{plate}/{well}/{field}.json",
            model=lambda wc: segment_rules.model_path(config, wc.population),
        output:
            **SEGMENT_OUTPUTS,
        params:
            config=SEGMENT_CONFIG,
        log:
            "logs/segment/{plate}/{well}/{field}/{population}.log",
        benchmark:
            "benchmarks/segment/{plate}/{well}/{field}/{population}.tsv"
        threads: 2
        resources:
            mem_mb=4000,
            runtime=60,
        conda:
            "../../envs/cellpose.yaml"
        script:
            "../scripts/segment_population.py"
