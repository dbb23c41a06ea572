"""Rule tiny_mtbench: a small MT-Bench question set in FastChat's schema."""

from jaflow.logs import log_to
from jaflow.tiny.mtbench import write_tiny_questions

with log_to(snakemake.log[0]):
    write_tiny_questions(snakemake.output.questions, snakemake.params.seed)
