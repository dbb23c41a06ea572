"""Rule verify_weights: a base model's files against the card's published md5 / sha256."""

from jaflow.logs import log_to
from jaflow.provenance import write_weights_check

with log_to(snakemake.log[0]) as log:  # noqa: F821 - injected by Snakemake
    record = write_weights_check(snakemake.params.spec, snakemake.output[0])  # noqa: F821
    log.info("weights of %s match the config: %s", record["pretrained"], record["files"])
