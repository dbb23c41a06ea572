# Merge nodes of the model graph into a Mixtral-style MoE with mergekit-moe.


rule merge_moe:
    input:
        merge_inputs,
    output:
        directory(L.model("{merged}")),
    log:
        L.log("merge", "{merged}"),
    conda:
        "../../envs/merge.yaml"
    params:
        spec=merge_spec,
        seed=config["seed"],
    script:
        "../scripts/merge_moe.py"
