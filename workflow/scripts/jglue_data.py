"""Rule jglue_data: JGLUE files (data_dir, tiny world or URLs) as local JSON lines for lm-eval."""

from jaflow.evaluate.jglue.data import materialize
from jaflow.logs import log_to

with log_to(snakemake.log[0]):
    materialize(snakemake.output[0], snakemake.input.source or None, snakemake.params.urls)
