"""Rule mtbench_answer: one model answers every MT-Bench question (both turns) in its chat format."""

import jaflow.logs
from jaflow.evaluate.mtbench.pipeline import answer_stage
from jaflow.gpus import job_gpus

with jaflow.logs.log_to(snakemake.log[0]), job_gpus(snakemake.resources):
    answer_stage(
        questions=snakemake.params.questions,
        output=snakemake.output[0],
        model_id=snakemake.wildcards.model,
        hf_args=snakemake.params.model,
        chat_format=snakemake.params.chat_format,
        # params hold what changes answers; how the backend is asked comes from the config
        mtbench={
            **snakemake.params.mtbench,
            "answer": {
                **snakemake.config["mtbench"]["answer"],
                **snakemake.params.mtbench["answer"],
            },
        },
        seed=snakemake.params.seed,
    )
