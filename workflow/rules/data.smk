# Dataset sampling: one mix per entry of `datasets:`, rendered in its prompt format.


rule sample_dataset:
    input:
        sources=dataset_source_files,
    output:
        train="results/datasets/{dataset}/train.jsonl",
        validation="results/datasets/{dataset}/validation.jsonl",
        manifest="results/datasets/{dataset}/manifest.json",
    params:
        spec=dataset_spec,
        seed=config["seed"],
    # network calls (hub downloads, judge APIs) can fail transiently; a rerun resumes
    retries: 2
    log:
        "logs/datasets/{dataset}.log",
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/sample_dataset.py"
