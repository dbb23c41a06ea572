"""Tokenization with prompt masking, and batches that are padded or padding-free (packed).

Prompt and response are tokenized separately and concatenated, so the label mask falls exactly
on the boundary (see the tokenizer trap in docs: a merge across the boundary would silently
shift it). Loss is on the response and EOS only unless `train_on_prompt`.

Packing (`FlatCollator`) lays a batch's examples end to end in one row, each with its own
position ids from 0; attention kernels read the boundaries from the position ids (FlashAttention
varlen, or the block-diagonal mask transformers builds for sdpa/eager), so no attention crosses
an example and the loss is that of the padded batch, with no padding computed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jaflow.errors import DataError
from jaflow.io import read_jsonl

IGNORE_INDEX = -100
log = logging.getLogger(__name__)

Example = dict[str, list[int]]


def read_pairs(path: str | Path) -> list[dict[str, str]]:
    """Rows of a sampled dataset; each needs string `prompt` and `response` (file:line on error)."""
    rows = read_jsonl(path)
    for lineno, row in enumerate(rows, start=1):
        for key in ("prompt", "response"):
            if not isinstance(row.get(key), str):
                raise DataError(
                    f"{path}:{lineno}: field '{key}' must be a string, got {row.get(key)!r}"
                )
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def _adds_bos(tokenizer) -> bool:
    bos = tokenizer.bos_token_id
    return bos is not None and tokenizer("a")["input_ids"][:1] == [bos]


def tokenize_example(
    tokenizer, prompt: str, response: str, max_length: int, train_on_prompt: bool = False
) -> Example:
    """[BOS] prompt response EOS, labels -100 over BOS+prompt unless `train_on_prompt`.

    Over `max_length`, the response keeps at least half the budget; the prompt loses its start
    (its end holds the response marker), the response its tail.
    """
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    r_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None:
        r_ids = r_ids + [tokenizer.eos_token_id]
    bos = [tokenizer.bos_token_id] if _adds_bos(tokenizer) else []
    budget = max_length - len(bos)
    if len(p_ids) + len(r_ids) > budget:
        keep_r = min(len(r_ids), max(budget - len(p_ids), budget // 2))
        r_ids = r_ids[:keep_r]
        p_ids = p_ids[len(p_ids) - (budget - keep_r) :] if budget - keep_r > 0 else []
    prompt_part = bos + p_ids
    input_ids = prompt_part + r_ids
    if train_on_prompt:
        labels = list(input_ids)
    else:
        labels = [IGNORE_INDEX] * len(prompt_part) + list(r_ids)
    return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels}


def tokenize_dataset(
    tokenizer, rows: Sequence[dict[str, str]], max_length: int, train_on_prompt: bool = False
) -> list[Example]:
    """Tokenize every row; rows left with no label token (all truncated away) are dropped."""
    out = [
        tokenize_example(tokenizer, r["prompt"], r["response"], max_length, train_on_prompt)
        for r in rows
    ]
    kept = [e for e in out if any(t != IGNORE_INDEX for t in e["labels"])]
    if len(kept) < len(out):
        log.warning(
            "dropped %d of %d rows with no response tokens left after truncation",
            len(out) - len(kept),
            len(out),
        )
    if not kept:
        raise DataError("no training example has response tokens within max_length")
    return kept


@dataclass
class Collator:
    """Right-pads a batch to its own longest sequence (labels with -100)."""

    pad_token_id: int

    def __call__(self, batch: Sequence[dict[str, Any]]):
        import torch

        width = max(len(b["input_ids"]) for b in batch)
        out: dict[str, list[list[int]]] = {"input_ids": [], "attention_mask": [], "labels": []}
        for b in batch:
            n = width - len(b["input_ids"])
            out["input_ids"].append(list(b["input_ids"]) + [self.pad_token_id] * n)
            out["attention_mask"].append(list(b["attention_mask"]) + [0] * n)
            out["labels"].append(list(b["labels"]) + [IGNORE_INDEX] * n)
        return {k: torch.tensor(v, dtype=torch.long) for k, v in out.items()}


@dataclass
class FlatCollator:
    """One row of the batch's examples end to end, position ids restarting at each example.

    The first label of each example is -100: the token before it belongs to another example
    (in a padded batch nothing predicts an example's first token either).
    """

    def __call__(self, batch: Sequence[dict[str, Any]]):
        import torch

        ids: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        for b in batch:
            n = len(b["input_ids"])
            ids += list(b["input_ids"])
            labels += [IGNORE_INDEX] + list(b["labels"][1:])
            positions += range(n)
        return {
            "input_ids": torch.tensor([ids], dtype=torch.long),
            "labels": torch.tensor([labels], dtype=torch.long),
            "position_ids": torch.tensor([positions], dtype=torch.long),
        }


def collator(tokenizer, packing: bool):
    return FlatCollator() if packing else Collator(pad_token_id(tokenizer))


def pad_token_id(tokenizer) -> int:
    if tokenizer.pad_token_id is not None:
        return tokenizer.pad_token_id
    if tokenizer.eos_token_id is not None:
        return tokenizer.eos_token_id
    raise DataError("tokenizer has neither a pad nor an eos token")
