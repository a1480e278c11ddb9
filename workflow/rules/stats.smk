# Statistics (docs/statistics.md): per-well fractions, per-condition means
# with 95% CIs over wells, comparisons with the control (BH q), 4PL
# dose-response and plate QC (Z', SSMD). The well is the replicate unit.
# provenance.json: the run's config and sample-sheet hashes, git commit, package
# versions and the SHA-256 of every study table (shown in the report).


rule stats_tables:
    input:
        samples="results/tables/samples.parquet",
        fates="results/tables/fates.parquet",
        effectors="results/tables/effectors.parquet",
    output:
        wells=report("results/tables/wells.parquet", caption="../report/table_wells.rst",
                     category="Tables"),
        conditions=report("results/tables/conditions.parquet",
                          caption="../report/table_conditions.rst", category="Tables"),
        comparisons=report("results/tables/comparisons.parquet",
                           caption="../report/table_comparisons.rst", category="Tables"),
        dose_response=report("results/tables/dose_response.parquet",
                             caption="../report/table_dose_response.rst", category="Tables"),
        plate_qc=report("results/tables/plate_qc.parquet",
                        caption="../report/table_plate_qc.rst", category="Tables"),
        provenance=report("results/tables/provenance.json", caption="../report/provenance.rst",
                          category="Provenance"),
    log:
        "logs/stats_tables.log",
    benchmark:
        "benchmarks/stats_tables.tsv"
    params:
        control=config["study"]["control_condition"],
        settings=config.get("stats", {}),
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        "../../envs/livescreen.yaml"
    script:
        "../scripts/stats_tables.py"
