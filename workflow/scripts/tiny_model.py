"""Rule tiny_model: a randomly initialised tiny model of one architecture."""

from jaflow.logs import log_to
from jaflow.tiny import build_model

tiny = snakemake.params.tiny
with log_to(snakemake.log[0]):
    build_model(
        snakemake.wildcards.arch,
        snakemake.input.tokenizer,
        snakemake.output[0],
        hidden_size=tiny["hidden_size"],
        num_layers=tiny["num_layers"],
        num_heads=tiny["num_heads"],
        intermediate_size=tiny["intermediate_size"],
        seed=snakemake.params.seed,
    )
