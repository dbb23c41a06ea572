"""Rule merge_moe: merge a merge node's base and experts into a Mixtral-style MoE (mergekit-moe)."""

from jaflow.gpus import job_gpus
from jaflow.logs import log_to
from jaflow.merge import merge_moe

with log_to(snakemake.log[0]), job_gpus(snakemake.resources):
    merge_moe(snakemake.params.spec, snakemake.output[0], seed=snakemake.params.seed)
