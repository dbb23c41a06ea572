"""A deterministic scoring model for the JGLUE parity goldens (runs on transformers 4.35 and 5).

`HashLM` is a real `transformers` causal LM (registered with the Auto classes) whose logits are
integer hashes of the exact token ids before each position: the whole prefix (a masked running
sum) and its last 8 tokens in order. Left padding is masked out, so a padded batch scores as its
rows alone. A few `boost_ids` (EOS, the last token of "\n" and of "<NL>") win the argmax at
hash-chosen positions, so greedy generations stop at a stop string or at the end token, or run
into it, depending on the ids: every jp-stable stop rule is exercised.

Used by `tests/parity/make_goldens.py` inside the jp-stable venv and by the CI parity test.
"""

from __future__ import annotations

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    GenerationMixin,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers.modeling_outputs import CausalLMOutput

MODEL_TYPE = "jaflow_hash_lm"
P = 2_147_483_647
WINDOW = 8


class HashLMConfig(PretrainedConfig):
    model_type = MODEL_TYPE

    def __init__(
        self,
        vocab_size: int = 1000,
        boost_ids: list[int] | None = None,
        max_position_embeddings: int = 2048,
        **kwargs,
    ):
        self.vocab_size = vocab_size
        self.boost_ids = list(boost_ids or [])
        self.max_position_embeddings = max_position_embeddings
        kwargs.setdefault("use_cache", False)
        super().__init__(**kwargs)


def hash_logits(
    input_ids: torch.Tensor, mask: torch.Tensor, vocab_size: int, boost_ids: list[int]
) -> torch.Tensor:
    ids = (input_ids.long() + 1) * mask.long()
    total = torch.cumsum(ids * (ids + 7) % 65_521, dim=1)  # whole prefix, order-free
    local = torch.zeros_like(ids)
    for k in range(WINDOW):  # last WINDOW tokens, in order
        shifted = torch.nn.functional.pad(ids, (k, 0))[:, : ids.shape[1]]
        local = (local * 1_000_003 + shifted) % P
    h = (total * 69_069 + local * 7 + 12_345) % P  # [B, T]
    v = torch.arange(vocab_size, dtype=torch.long)
    x = (h[..., None] * 48_271 + v * 16_807 + 1) % P
    x = (x * 40_692 + 17) % P
    logits = (x % 10_007).double() / 10_007 * 8.0
    for j, tok in enumerate(boost_ids):
        hit = (h % 9) == j + 1
        logits[..., tok] = torch.where(
            hit, torch.full_like(logits[..., tok], 9.0 + j), logits[..., tok]
        )
    return logits.float()


class HashLM(PreTrainedModel, GenerationMixin):
    config_class = HashLMConfig
    base_model_prefix = "hash"
    main_input_name = "input_ids"

    def __init__(self, config: HashLMConfig):
        super().__init__(config)
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # from_pretrained needs a weight
        self.post_init()

    def _init_weights(self, module):
        pass

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        logits = hash_logits(
            input_ids.cpu(), mask.cpu(), self.config.vocab_size, self.config.boost_ids
        )
        return CausalLMOutput(logits=logits.to(self.anchor.device) + 0 * self.anchor.sum())

    def prepare_inputs_for_generation(self, input_ids, attention_mask=None, **kwargs):
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    def _reorder_cache(self, past, beam_idx):
        return past


def register() -> None:
    try:
        AutoConfig.register(MODEL_TYPE, HashLMConfig)
        AutoModelForCausalLM.register(HashLMConfig, HashLM)
    except ValueError:
        pass  # already registered


def config_for(tokenizer) -> dict:
    """The HashLM config for `tokenizer`: its vocabulary, boosting EOS and the last tokens of "\n" and "<NL>"."""
    boost = [tokenizer.eos_token_id]
    for s in ("\n", "<NL>"):
        ids = tokenizer.encode(s, add_special_tokens=False)
        if ids and ids[-1] not in boost:
            boost.append(ids[-1])
    return {
        "vocab_size": len(tokenizer),
        "boost_ids": boost,
        "eos_token_id": tokenizer.eos_token_id,
        "bos_token_id": tokenizer.bos_token_id,
    }


def save(path, config: dict) -> None:
    """Write a HashLM with `config` (from `config_for`) to `path`."""
    model = HashLM(HashLMConfig(**config))
    model.generation_config.use_cache = False
    model.save_pretrained(path)
