"""Rule mtbench_judge: an LLM judge rates one model's answers (resumable cache), then scores."""

import jaflow.logs
from jaflow.evaluate.mtbench.pipeline import judge_stage
from jaflow.gpus import job_gpus

with jaflow.logs.log_to(snakemake.log[0]), job_gpus(snakemake.resources):
    judge_stage(
        answers=snakemake.input.answers,
        questions=snakemake.params.questions,
        judgments=snakemake.output.judgments,
        scores=snakemake.output.scores,
        usage=snakemake.output.usage,
        cache=snakemake.params.cache,
        model_id=snakemake.wildcards.model,
        mtbench=snakemake.params.mtbench,
        judge_hf=snakemake.params.judge_hf,
    )
