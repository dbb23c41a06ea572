"""Rule jglue_data: JGLUE files (data_dir, tiny world or URLs) as local JSON lines for lm-eval."""

from jaflow.evaluate.jglue.data import materialize
from jaflow.logs import log_to

with log_to(snakemake.log[0]):
    marc_ja = {"marc_ja": snakemake.input.marc_ja} if snakemake.input.marc_ja else {}
    materialize(snakemake.output[0], snakemake.input.source or None, snakemake.params.urls, marc_ja)
