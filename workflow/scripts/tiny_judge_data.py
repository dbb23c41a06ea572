"""Rule tiny_judge_data: judge prompts answered with a rating, to train the demo's tiny judge."""

from jaflow.logs import log_to
from jaflow.tiny.judge import write_judge_rows

with log_to(snakemake.log[0]):
    write_judge_rows(
        snakemake.output[0], snakemake.input.questions, snakemake.params.rows, snakemake.params.seed
    )
