"""Rule tiny_instructions: Alpaca-style rows with a source column."""

from jaflow.logs import log_to
from jaflow.tiny.instructions import write_instructions

with log_to(snakemake.log[0]):
    write_instructions(snakemake.output[0], snakemake.params.rows, snakemake.params.seed)
