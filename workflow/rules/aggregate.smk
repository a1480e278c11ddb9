# Aggregate: per-site event tables -> study tables joined with the sample
# sheet (results/tables/{encounters,fates,effectors}.parquet) and the QC tables
# the figures need (cells per frame, track lengths), so that every figure can
# be redrawn from results/tables/ alone.
#
# A site whose sample-sheet row has a non-empty 'exclude' column (the reason)
# is left out of the study tables and listed in results/tables/missing_sites.parquet
# (and under 'excluded_sites' in every study table's provenance): after a site's
# jobs fail under --keep-going, the study tables are not written until the site
# is fixed or excluded this way, so no site is ever dropped silently
# (docs/bad-inputs.md).
EXCLUDED_SITES = study.excluded_sites(samples)
INCLUDED_SITES = study.included(samples)


rule aggregate_tables:
    input:
        samples="results/tables/samples.parquet",
        encounters=study.format_sites(
            INCLUDED_SITES, "results/sites/{plate}/{well}/{field}/events/encounters.parquet"),
        fates=study.format_sites(
            INCLUDED_SITES, "results/sites/{plate}/{well}/{field}/events/fates.parquet"),
        effectors=study.format_sites(
            INCLUDED_SITES, "results/sites/{plate}/{well}/{field}/events/effectors.parquet"),
        tracks=study.format_sites(
            INCLUDED_SITES, "results/sites/{plate}/{well}/{field}/track/{population}_tracks.parquet",
            POPULATIONS),
    output:
        encounters=report("results/tables/encounters.parquet",
                          caption="../report/table_encounters.rst", category="Tables"),
        fates=report("results/tables/fates.parquet", caption="../report/table_fates.rst",
                     category="Tables"),
        effectors="results/tables/effectors.parquet",
        frame_counts="results/tables/qc_frame_counts.parquet",
        track_lengths="results/tables/qc_track_lengths.parquet",
        missing_sites=report("results/tables/missing_sites.parquet",
                             caption="../report/table_missing_sites.rst", category="Tables"),
    params:
        excluded=EXCLUDED_SITES,
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
