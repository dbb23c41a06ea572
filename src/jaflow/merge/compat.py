"""Are the base and the experts of a merge shaped alike? Checked before anything is written.

mergekit-moe keeps the base's attention, embeddings and head and takes each expert's MLP, so
every expert must match the base in the fields below and read the same token ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jaflow.errors import ConfigError

# mergekit 0.1.5's Mixtral output takes llama or mistral inputs, all of one model_type.
MIXTRAL_INPUT_TYPES = ("llama", "mistral")
SHAPE_FIELDS = ("hidden_size", "num_hidden_layers", "intermediate_size", "vocab_size", "hidden_act")
# pad is left out on purpose: instruct variants often add one without changing any token id.
SPECIAL_TOKENS = ("bos_token", "eos_token", "unk_token")


@dataclass(frozen=True)
class ModelRef:
    """A model of the merge: its graph name, where it lives, and its hf args."""

    name: str
    role: str  # "base" or "experts[i]"
    hf: dict[str, Any]

    @property
    def path(self) -> str:
        return self.hf["pretrained"]

    def __str__(self) -> str:
        return f"'{self.name}' ({self.path})"


def _config(ref: ModelRef):
    import transformers

    try:
        return transformers.AutoConfig.from_pretrained(
            ref.path, trust_remote_code=ref.hf["trust_remote_code"]
        )
    except (OSError, ValueError) as e:
        raise ConfigError(f"{ref.role}: cannot read the config of model {ref}: {e}") from None


def _tokenizer(ref: ModelRef):
    import transformers

    source = ref.hf.get("tokenizer") or ref.path
    try:
        return transformers.AutoTokenizer.from_pretrained(
            source,
            use_fast=ref.hf["use_fast"],
            trust_remote_code=ref.hf["trust_remote_code"],
        )
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"{ref.role}: cannot load the tokenizer of model {ref} from {source}: {e}"
        ) from None


def _mismatch(
    where: str, field: str, expert: ModelRef, a: Any, base: ModelRef, b: Any
) -> ConfigError:
    return ConfigError(
        f"{where}: expert {expert} is not compatible with base {base}: {field} differs "
        f"(expert {field}={a!r}, base {field}={b!r}); mergekit-moe needs every expert shaped like the base"
    )


def _vocab_difference(a: dict[str, int], b: dict[str, int]) -> str:
    only_a = sorted(set(a) - set(b))
    only_b = sorted(set(b) - set(a))
    moved = sorted(t for t in set(a) & set(b) if a[t] != b[t])
    parts = []
    if only_a:
        parts.append(f"{len(only_a)} tokens only in the expert (e.g. {only_a[:3]})")
    if only_b:
        parts.append(f"{len(only_b)} tokens only in the base (e.g. {only_b[:3]})")
    if moved:
        parts.append(f"{len(moved)} tokens with other ids (e.g. {moved[:3]})")
    return "; ".join(parts)


def check_compatible(base: ModelRef, experts: list[ModelRef], where: str = "merge") -> None:
    """Raise ConfigError naming both models and the field when an expert cannot join the base."""
    base_cfg = _config(base)
    if base_cfg.model_type not in MIXTRAL_INPUT_TYPES:
        raise ConfigError(
            f"{where}.base: model {base} is model_type={base_cfg.model_type!r}; mergekit-moe's "
            f"Mixtral output takes only {list(MIXTRAL_INPUT_TYPES)} models"
        )
    base_tok = _tokenizer(base)
    base_vocab = base_tok.get_vocab()
    for expert in experts:
        at = f"{where}.{expert.role}"
        cfg = _config(expert)
        if cfg.model_type != base_cfg.model_type:
            raise _mismatch(at, "model_type", expert, cfg.model_type, base, base_cfg.model_type)
        for field in SHAPE_FIELDS:
            a, b = getattr(cfg, field, None), getattr(base_cfg, field, None)
            if a != b:
                raise _mismatch(at, field, expert, a, base, b)
        tok = _tokenizer(expert)
        vocab = tok.get_vocab()
        if vocab != base_vocab:
            raise ConfigError(
                f"{at}: expert {expert} is not compatible with base {base}: tokenizer vocabulary "
                f"differs ({_vocab_difference(vocab, base_vocab)})"
            )
        for special in SPECIAL_TOKENS:
            a, b = getattr(tok, special), getattr(base_tok, special)
            if a != b:
                raise _mismatch(at, f"tokenizer {special}", expert, a, base, b)
