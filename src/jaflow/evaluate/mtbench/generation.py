"""Loading a causal LM from the graph's hf_args and batched, seeded, left-padded generation."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch

from jaflow.hf import DTYPES, load_tokenizer

log = logging.getLogger(__name__)


def load_model(hf_args: dict[str, Any]) -> tuple[Any, Any]:
    """(model, tokenizer) from graph.hf_args: pretrained, peft, tokenizer, use_fast, trust_remote_code, dtype."""
    from transformers import AutoModelForCausalLM

    trust = bool(hf_args.get("trust_remote_code", False))
    tokenizer = load_tokenizer(hf_args)
    dtype = hf_args.get("dtype") or "auto"
    model = AutoModelForCausalLM.from_pretrained(
        hf_args["pretrained"],
        dtype=DTYPES.get(dtype, "auto"),
        trust_remote_code=trust,
        revision=hf_args.get("revision"),  # a hub base pinned in the config; None otherwise
        device_map="auto" if torch.cuda.is_available() else None,
    )
    if hf_args.get("peft"):
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, hf_args["peft"])
    model.eval()
    tokenizer.padding_side = "left"
    return model, tokenizer


def context_length(model: Any) -> int | None:
    config = getattr(model, "config", None)
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


@torch.inference_mode()
def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    repetition_penalty: float = 1.0,
    seed: int = 0,
    add_special_tokens: bool = True,
) -> list[str]:
    """Completions of `prompts` (one batch, left-padded); greedy when temperature < 1e-4."""
    from jaflow.evaluate.mtbench.categories import GREEDY_BELOW

    limit = context_length(model)
    max_prompt = None if limit is None else max(1, limit - max_new_tokens)
    if max_prompt is not None:
        tokenizer.truncation_side = "left"  # keep the end of the prompt, where the answer starts
    enc = tokenizer(
        list(prompts),
        return_tensors="pt",
        padding=True,
        add_special_tokens=add_special_tokens,
        truncation=max_prompt is not None,
        max_length=max_prompt,
    ).to(model.device)
    sample = temperature >= GREEDY_BELOW
    kwargs: dict[str, Any] = {"do_sample": sample, "max_new_tokens": max_new_tokens}
    if sample:
        kwargs.update(temperature=temperature, top_p=top_p)
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    if repetition_penalty != 1.0:
        kwargs["repetition_penalty"] = repetition_penalty
    torch.manual_seed(seed)
    out = model.generate(
        **enc,
        **kwargs,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    new = out[:, enc["input_ids"].shape[1] :]
    return [t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def apply_chat_template(tokenizer: Any, messages: Sequence[dict[str, str]]) -> str:
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
