# Events: per site, effector-target encounters and their outcomes, target fates
# and per-effector counts (docs/events.md); a study-level gallery of example
# events for the report; validation against the simulator's truth.

EVENT_GALLERY_TYPES = ["kill", "cell_in_cell", "evasion", "trogocytosis_only", "trogocytosis",
                       "died"]


rule score_events:
    input:
        target_tracks="results/sites/{plate}/{well}/{field}/track/target_tracks.parquet",
        effector_tracks="results/sites/{plate}/{well}/{field}/track/effector_tracks.parquet",
        target_labels="results/sites/{plate}/{well}/{field}/track/target_track_labels.tif",
        effector_labels="results/sites/{plate}/{well}/{field}/track/effector_track_labels.tif",
        image=get_image,
    output:
        encounters="results/sites/{plate}/{well}/{field}/events/encounters.parquet",
        fates="results/sites/{plate}/{well}/{field}/events/fates.parquet",
        effectors="results/sites/{plate}/{well}/{field}/events/effectors.parquet",
        target_labels="results/sites/{plate}/{well}/{field}/events/target_labels.tif",
        target_tracks="results/sites/{plate}/{well}/{field}/events/target_tracks.parquet",
    log:
        "logs/events/{plate}/{well}/{field}.log",
    benchmark:
        "benchmarks/events/{plate}/{well}/{field}.tsv"
    params:
        imaging=config["imaging"],
        settings=config.get("events", {}),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        "../../envs/livescreen.yaml"
    script:
        "../scripts/score_events.py"


rule event_gallery:
    input:
        encounters=site_paths("results/sites/{plate}/{well}/{field}/events/encounters.parquet"),
        fates=site_paths("results/sites/{plate}/{well}/{field}/events/fates.parquet"),
        labels=site_paths("results/sites/{plate}/{well}/{field}/track/{population}_track_labels.tif",
                          POPULATIONS),
        target_labels=site_paths("results/sites/{plate}/{well}/{field}/events/target_labels.tif"),
        tracks=site_paths("results/sites/{plate}/{well}/{field}/events/target_tracks.parquet"),
        images=site_images(),
    output:
        [report(f"results/figures/gallery/{event}.png", caption="../report/events_gallery.rst",
                category="Events", subcategory="Gallery", labels={"event": event})
         for event in EVENT_GALLERY_TYPES],
    log:
        "logs/events/gallery.log",
    benchmark:
        "benchmarks/events/gallery.tsv"
    params:
        imaging=config["imaging"],
        settings=config.get("events", {}),
        sites=site_records(),
        events=EVENT_GALLERY_TYPES,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        "../../envs/livescreen.yaml"
    script:
        "../scripts/event_gallery.py"


rule validate_events:
    input:
        encounters=site_paths("results/sites/{plate}/{well}/{field}/events/encounters.parquet"),
        fates=site_paths("results/sites/{plate}/{well}/{field}/events/fates.parquet"),
        labels=site_paths("results/sites/{plate}/{well}/{field}/track/{population}_track_labels.tif",
                          POPULATIONS),
        target_labels=site_paths("results/sites/{plate}/{well}/{field}/events/target_labels.tif"),
        truth=site_paths("resources/simulated/{plate}/{well}/{field}/truth/truth.json"),
        images=site_images(),
    output:
        summary=report("results/validation/events.parquet", caption="../report/events_validation.rst",
                       category="Events", subcategory="Validation"),
        matches="results/validation/events_matches.parquet",
    log:
        "logs/events/validate.log",
    benchmark:
        "benchmarks/events/validate.tsv"
    params:
        imaging=config["imaging"],
        settings=config.get("events", {}),
        track=config.get("track", {}),
        sites=site_records(),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/btrack.yaml"
    script:
        "../scripts/validate_events.py"
