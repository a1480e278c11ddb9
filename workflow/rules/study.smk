# Study design: the validated sample sheet as a table, and a per-site check of
# each raw movie's pixels (first job of every site, so a bad movie fails only
# its own site under --keep-going).


rule study_sheet:
    input:
        sheet=config["samples"],
    output:
        table="results/tables/samples.parquet",
    log:
        "logs/study_sheet.log",
    localrule: True
    conda:
        "../../envs/livescreen.yaml"
    script:
        "../scripts/study_sheet.py"


rule inspect_image:
    input:
        image=get_image,
    output:
        qc="results/qc/images/{plate}/{well}/{field}.json",
    log:
        "logs/inspect_image/{plate}/{well}/{field}.log",
    benchmark:
        "benchmarks/inspect_image/{plate}/{well}/{field}.tsv"
    params:
        channels=config["imaging"]["channels"],
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/livescreen.yaml"
    script:
        "../scripts/inspect_image.py"
