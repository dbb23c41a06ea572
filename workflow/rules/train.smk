# Training runs of the model graph, then checkpoint selection into results/models/<name>.
# Checkpoints live in results/train/<name>/checkpoints/, which is not an output: a killed
# job keeps them, and the rerun resumes from the last complete one (unless the job's settings
# changed). A job given more than one GPU (resources gpu=N, e.g. a profile's set-resources)
# re-launches itself on N processes through torchrun; JAFLOW_NPROC=N does the same on CPU.


rule train:
    input:
        unpack(train_inputs),
    output:
        log_history="results/train/{trained}/log_history.csv",
        state="results/train/{trained}/trainer_state.json",
    params:
        model=parent_hf_args,
        node=train_node,
        checkpoints="results/train/{trained}/checkpoints",
        seed=config["seed"],
    log:
        "logs/train/{trained}.log",
    conda:
        "../../envs/train.yaml"
    script:
        "../scripts/train.py"


rule select_checkpoint:
    input:
        unpack(select_inputs),
    output:
        directory("results/models/{trained}"),
    params:
        model=parent_hf_args,
        node=train_node,
        checkpoints="results/train/{trained}/checkpoints",
        merge_adapter=merge_adapter,
    log:
        "logs/select/{trained}.log",
    conda:
        "../../envs/train.yaml"
    script:
        "../scripts/select_checkpoint.py"
