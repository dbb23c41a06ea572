"""Rule marc_ja: rebuild MARC-ja from the Amazon reviews file by JGLUE's recipe."""

from jaflow.data.marc_ja import rebuild
from jaflow.logs import log_to

with log_to(snakemake.log[0]) as log:  # noqa: F821 - injected by Snakemake
    info = rebuild(snakemake.params.spec, snakemake.output[0])  # noqa: F821
    log.info(
        "MARC-ja rebuilt from %s: %s (kept %d reviews)",
        info["reviews"]["path"],
        info["counts"],
        info["kept"],
    )
