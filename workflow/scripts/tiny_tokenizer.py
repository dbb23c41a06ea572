"""Rule tiny_tokenizer: a BPE tokenizer trained on the tiny world's text."""

from jaflow.logs import log_to
from jaflow.tiny import build_tokenizer, iter_texts, template_texts

with log_to(snakemake.log[0]):
    texts = list(iter_texts(snakemake.input)) + template_texts()
    build_tokenizer(texts, snakemake.output[0], snakemake.params.vocab_size)
