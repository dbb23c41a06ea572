"""Loading what the model graph's `hf_args` describe (pretrained, peft, tokenizer, use_fast,
trust_remote_code, dtype), shared by training and generation."""

from __future__ import annotations

from typing import Any

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def load_tokenizer(hf_args: dict[str, Any]):
    """The tokenizer of `hf_args`, with a pad token (EOS, else UNK) when it has none."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(
        hf_args.get("tokenizer") or hf_args["pretrained"],
        use_fast=hf_args.get("use_fast", True),
        trust_remote_code=hf_args.get("trust_remote_code", False),
    )
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token  # labels and attention masks cover padding
    return tok
