"""Rule sample_dataset: sample one dataset mix and render it in its prompt format."""

from jaflow.data.mix import build_mix
from jaflow.logs import log_to

with log_to(snakemake.log[0]) as log:
    manifest = build_mix(
        snakemake.wildcards.dataset,
        snakemake.params.spec,
        snakemake.params.seed,
        dict(snakemake.output),
    )
    log.info("wrote %s: %s", snakemake.output.manifest, manifest["counts"])
