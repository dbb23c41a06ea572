# Dataset sampling: one mix per entry of `datasets:`, rendered in its prompt format.
# No retries: a bad row is deterministic (and hub downloads retry inside `datasets`).


rule sample_dataset:
    input:
        sources=dataset_source_files,
    output:
        train=L.dataset("{dataset}", "train.jsonl"),
        validation=L.dataset("{dataset}", "validation.jsonl"),
        manifest=L.dataset("{dataset}", "manifest.json"),
    log:
        L.log("datasets", "{dataset}"),
    conda:
        "../../envs/data.yaml"
    params:
        spec=dataset_spec,
        seed=config["seed"],
    script:
        "../scripts/sample_dataset.py"
