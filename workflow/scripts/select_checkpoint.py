"""Rule select_checkpoint: best checkpoint of a training run -> results/models/<name>/."""

import jaflow.logs
from jaflow.gpus import job_gpus
from jaflow.train.select import select_checkpoint

with jaflow.logs.log_to(snakemake.log[0]), job_gpus(snakemake.resources):
    select_checkpoint(
        state_path=snakemake.input.state,
        checkpoints_dir=snakemake.params.checkpoints,
        out_dir=snakemake.output[0],
        model_args=dict(snakemake.params.model),
        select=dict(snakemake.params.node["select"]),
        merge_adapter=bool(snakemake.params.merge_adapter),
    )
