# Training runs of the model graph, then checkpoint selection into models/<name>.
# Checkpoints live in train/<name>/checkpoints/, which is not an output: a killed job keeps
# them, and the rerun resumes from the last complete one (unless what the run depends on
# changed: its parent's content, its data, its settings). A job given more than one GPU
# (resources gpu=N, e.g. a profile's set-resources) re-launches itself on N processes through
# torchrun; JAFLOW_NPROC=N does the same on CPU.


rule train:
    input:
        unpack(train_inputs),
    output:
        log_history=L.train("{trained}", "log_history.csv"),
        state=L.train("{trained}", "trainer_state.json"),
    log:
        L.log("train", "{trained}"),
    conda:
        "../../envs/train.yaml"
    resources:
        # train.distributed: GPUs in all, and nodes
        gpu=train_gpus,
        nodes=train_nodes,
    params:
        model=parent_hf_args,
        node=train_node,
        checkpoints=L.train("{trained}", "checkpoints"),
        seed=config["seed"],
    script:
        "../scripts/train.py"


rule select_checkpoint:
    input:
        unpack(select_inputs),
    output:
        directory(L.model("{trained}")),
    log:
        L.log("select", "{trained}"),
    conda:
        "../../envs/train.yaml"
    params:
        model=parent_hf_args,
        node=train_node,
        checkpoints=L.train("{trained}", "checkpoints"),
        merge_adapter=merge_adapter,
    script:
        "../scripts/select_checkpoint.py"
