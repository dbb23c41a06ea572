"""Rule train: one training run of the model graph (resumes from its last complete checkpoint)."""

from pathlib import Path

import jaflow.logs
from jaflow.gpus import job_gpus
from jaflow.train.launch import nproc, run
from jaflow.train.recipes import TrainJob

with jaflow.logs.log_to(snakemake.log[0]), job_gpus(snakemake.resources):
    node = snakemake.params.node
    job = TrainJob(
        name=node["name"],
        method=node["method"],
        model=dict(snakemake.params.model),
        train_file=snakemake.input.train,
        validation_file=snakemake.input.validation,
        out_dir=str(Path(snakemake.output.state).parent),
        checkpoints=snakemake.params.checkpoints,
        train=dict(node["train"]),
        select=dict(node["select"]),
        seed=snakemake.params.seed,
    )
    run(job, nproc(dict(snakemake.resources.items())))
