"""Rule mtbench_pairwise: a model against the baseline, both orders judged (resumable cache)."""

import jaflow.logs
from jaflow.evaluate.mtbench.pipeline import pairwise_stage

with jaflow.logs.log_to(snakemake.log[0]):
    pairwise_stage(
        answers=snakemake.input.answers,
        baseline_answers=snakemake.input.baseline,
        questions=snakemake.params.questions,
        judgments=snakemake.output.judgments,
        scores=snakemake.output.scores,
        cache=snakemake.params.cache,
        model_id=snakemake.wildcards.model,
        baseline=snakemake.params.baseline,
        mtbench=snakemake.params.mtbench,
        judge_hf=snakemake.params.judge_hf,
    )
