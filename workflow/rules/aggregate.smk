# Aggregate: per-site event tables -> study tables joined with the sample
# sheet (results/tables/{encounters,fates,effectors}.parquet) and the QC tables
# the figures need (cells per frame, track lengths), so that every figure can
# be redrawn from results/tables/ alone.

rule aggregate_tables:
    input:
        samples="results/tables/samples.parquet",
        encounters=site_paths("results/sites/{plate}/{well}/{field}/events/encounters.parquet"),
        fates=site_paths("results/sites/{plate}/{well}/{field}/events/fates.parquet"),
        effectors=site_paths("results/sites/{plate}/{well}/{field}/events/effectors.parquet"),
        tracks=site_paths("results/sites/{plate}/{well}/{field}/track/{population}_tracks.parquet",
                          POPULATIONS),
    output:
        encounters=report("results/tables/encounters.parquet",
                          caption="../report/table_encounters.rst", category="Tables"),
        fates=report("results/tables/fates.parquet", caption="../report/table_fates.rst",
                     category="Tables"),
        effectors="results/tables/effectors.parquet",
        frame_counts="results/tables/qc_frame_counts.parquet",
        track_lengths="results/tables/qc_track_lengths.parquet",
    log:
        "logs/aggregate_tables.log",
    benchmark:
        "benchmarks/aggregate_tables.tsv"
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/livescreen.yaml"
    script:
        "../scripts/aggregate_tables.py"
