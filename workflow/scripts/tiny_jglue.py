"""Rule tiny_jglue: small JGLUE-format files and a learnable MARC-ja-style train set."""

from jaflow.logs import log_to
from jaflow.tiny.jglue import write_marc_train, write_tiny_jglue

with log_to(snakemake.log[0]):
    write_tiny_jglue(snakemake.output.jglue, snakemake.params.rows, snakemake.params.seed)
    write_marc_train(snakemake.output.marc_train, snakemake.params.marc_rows, snakemake.params.seed)
