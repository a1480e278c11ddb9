# Tracking (btrack): per site, link each population's segmented objects over
# time and measure them once (regionprops, every channel). Outputs, per
# population, the tracks table (one row per object per frame) and a label stack
# whose pixel values are track ids (for napari and for looking masks up by
# track). One job tracks both populations of a site: tracking takes about a
# second of work per population, less than the job's start-up, and one job
# fewer per site keeps the DAG of a 1,536-site plate small (docs/cluster.md).


rule track_site:
    input:
        labels=expand("results/sites/{{plate}}/{{well}}/{{field}}/segment/{population}_labels.tif",
                      population=POPULATIONS),
        image=get_image,
    output:
        tracks=expand("results/sites/{{plate}}/{{well}}/{{field}}/track/{population}_tracks.parquet",
                      population=POPULATIONS),
        track_labels=expand(
            "results/sites/{{plate}}/{{well}}/{{field}}/track/{population}_track_labels.tif",
            population=POPULATIONS),
    log:
        "logs/track/{plate}/{well}/{field}.log",
    benchmark:
        "benchmarks/track/{plate}/{well}/{field}.tsv"
    params:
        populations=POPULATIONS,
        imaging=config["imaging"],
        settings={pop: config.get("track", {}).get(pop, {}) for pop in POPULATIONS},
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/btrack.yaml"
    script:
        "../scripts/track_site.py"
