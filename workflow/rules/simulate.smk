# Simulated co-culture movies with ground truth (livescreen.simulate; model in
# docs/simulator.md). Only when simulate.enabled: then every sample-sheet image is
# resources/simulated/{plate}/{well}/{field}/image.ome.tif and comes from here.
# The site's seed derives from simulate.seed and plate/well/field (SHA-256), so a
# site's movie and truth do not depend on which other sites are in the sheet.

if SIMULATE:

    rule simulate_site:
        output:
            image="resources/simulated/{plate}/{well}/{field}/image.ome.tif",
            labels_target="resources/simulated/{plate}/{well}/{field}/truth/labels_target.tif",
            labels_effector="resources/simulated/{plate}/{well}/{field}/truth/labels_effector.tif",
            tracks="resources/simulated/{plate}/{well}/{field}/truth/tracks.parquet",
            encounters="resources/simulated/{plate}/{well}/{field}/truth/encounters.parquet",
            fates="resources/simulated/{plate}/{well}/{field}/truth/fates.parquet",
            events="resources/simulated/{plate}/{well}/{field}/truth/events.parquet",
            truth="resources/simulated/{plate}/{well}/{field}/truth/truth.json",
        log:
            "logs/simulate_site/{plate}/{well}/{field}.log",
        benchmark:
            "benchmarks/simulate_site/{plate}/{well}/{field}.tsv"
        params:
            sample=get_sample,
            simulate=config.get("simulate", {}),
            imaging=config["imaging"],
        threads: 1
        resources:
            mem_mb=1000,
            runtime=10,
        conda:
            "../../envs/livescreen.yaml"
        script:
            "../scripts/simulate_site.py"
