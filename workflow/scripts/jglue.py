"""Rule jglue: one suite on one model through lm-eval (jaflow.evaluate.jglue.run)."""

from pathlib import Path

from jaflow.evaluate.jglue.run import evaluate_suite
from jaflow.gpus import job_gpus
from jaflow.logs import log_to

with log_to(snakemake.log[0]), job_gpus(snakemake.resources):
    cfg = snakemake.params.settings
    evaluate_suite(
        model=snakemake.wildcards.model,
        suite=snakemake.wildcards.suite,
        hf=snakemake.params.model,
        tasks=snakemake.params.suite,
        data_dir=snakemake.input.data,
        out_dir=Path(snakemake.output.scores).parent,
        seed=snakemake.params.seed,
        harness=snakemake.params.harness,
        limit=cfg["limit"],
        batch_size=cfg["batch_size"],
        loglikelihood_batch_size=snakemake.params.loglikelihood_batch_size,
        max_length=cfg["max_length"],
        cache_dir=cfg["cache_dir"],
    )
