# Tracking (btrack): per site and population, link the segmented objects over
# time and measure them once (regionprops, every channel). Outputs the tracks
# table (one row per object per frame) and a label stack whose pixel values
# are track ids (for napari and for looking masks up by track).


rule track_population:
    input:
        labels="results/sites/{plate}/{well}/{field}/segment/{population}_labels.tif",
        image=get_image,
    output:
        tracks="results/sites/{plate}/{well}/{field}/track/{population}_tracks.parquet",
        track_labels="results/sites/{plate}/{well}/{field}/track/{population}_track_labels.tif",
    log:
        "logs/track/{plate}/{well}/{field}/{population}.log",
    benchmark:
        "benchmarks/track/{plate}/{well}/{field}/{population}.tsv"
    params:
        imaging=config["imaging"],
        settings=lambda wc: config.get("track", {}).get(wc.population, {}),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/btrack.yaml"
    script:
        "../scripts/track_population.py"
