"""Loading what the model graph's `hf_args` describe (pretrained, peft, tokenizer, use_fast,
trust_remote_code, dtype), shared by training, generation and JGLUE evaluation.

`use_fast: false` (rinna's models) means the slow sentencepiece tokenizer: sentencepiece's own
pieces, byte fallback and newlines kept, no dummy prefix unless the model has one. transformers 5
ignores `use_fast` and rebuilds a fast tokenizer that drops newlines, adds a leading `▁` and has
no byte fallback. `SlowSentencePiece` restores transformers 4's slow T5Tokenizer / LlamaTokenizer
(legacy) behaviour on transformers 5's sentencepiece backend: the same ids from `encode`, the
same text from `decode`. A tokenizer it cannot honour `use_fast: false` for is an error, never a
silent fast one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from jaflow.errors import ConfigError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# tokenizer_class -> slow style; the files a slow sentencepiece tokenizer reads its model from
SLOW_STYLES = {
    "T5Tokenizer": "t5",
    "T5TokenizerFast": "t5",
    "LlamaTokenizer": "llama",
    "LlamaTokenizerFast": "llama",
}
SPM_FILES = ("spiece.model", "tokenizer.model", "sentencepiece.model")
SPIECE_UNDERLINE = "▁"


def _token_text(value: Any) -> str | None:
    return value["content"] if isinstance(value, dict) else value


def _slow_class():
    from transformers.tokenization_utils_sentencepiece import SentencePieceBackend

    class SlowSentencePiece(SentencePieceBackend):
        """transformers 4's slow (legacy) T5Tokenizer / LlamaTokenizer on the sentencepiece backend."""

        vocab_files_names = {"vocab_file": "spiece.model"}
        model_input_names = ["input_ids", "attention_mask"]

        def __init__(
            self,
            vocab_file: str,
            style: str,
            add_bos_token: bool = True,
            add_eos_token: bool = False,
            **kwargs: Any,
        ):
            self.style = style
            if style == "t5":
                kwargs["special_tokens_pattern"] = "eos"
            else:
                kwargs["special_tokens_pattern"] = (
                    ("bos_eos" if add_eos_token else "bos")
                    if add_bos_token
                    else ("eos" if add_eos_token else "none")
                )
            self.add_bos_token, self.add_eos_token = add_bos_token, add_eos_token
            super().__init__(vocab_file=vocab_file, legacy=True, **kwargs)

        def build_inputs_with_special_tokens(self, token_ids_0, token_ids_1=None):
            if self.style != "t5":
                return super().build_inputs_with_special_tokens(token_ids_0, token_ids_1)
            eos = [self.eos_token_id]

            def with_eos(ids):  # transformers 4's T5: no second </s> after one already there
                return list(ids) if ids and ids[-1] == self.eos_token_id else list(ids) + eos

            return (
                with_eos(token_ids_0)
                if token_ids_1 is None
                else with_eos(token_ids_0) + with_eos(token_ids_1)
            )

        def _decode(
            self,
            token_ids,
            skip_special_tokens: bool = False,
            clean_up_tokenization_spaces=None,
            spaces_between_special_tokens: bool = True,
            **kwargs,
        ) -> str:
            # transformers 4's PreTrainedTokenizer._decode: added tokens that are not special (e.g.
            # <pad> once pad_token is set to </s>) are spliced in whole, joined by spaces
            ids = [token_ids] if isinstance(token_ids, int) else list(token_ids)
            tokens = self.convert_ids_to_tokens(ids, skip_special_tokens=skip_special_tokens)
            specials = set(self.all_special_tokens)
            legacy = {t for t in self.added_tokens_encoder if t not in specials}
            sub_texts, current = [], []
            for token in tokens:
                if token in legacy:
                    if current:
                        text = self.convert_tokens_to_string(current)
                        if text:
                            sub_texts.append(text)
                        current = []
                    sub_texts.append(token)
                else:
                    current.append(token)
            if current:
                sub_texts.append(self.convert_tokens_to_string(current))
            text = (" " if spaces_between_special_tokens else "").join(sub_texts)
            cleanup = (
                self.clean_up_tokenization_spaces
                if clean_up_tokenization_spaces is None
                else (clean_up_tokenization_spaces)
            )
            return self.clean_up_tokenization(text) if cleanup else text

        def convert_tokens_to_string(self, tokens: list[str]) -> str:
            if not tokens:
                return ""
            tokens = list(tokens)
            specials = set(self.all_special_tokens)
            if self.style == "t5":
                tokens[0] = tokens[0].lstrip(SPIECE_UNDERLINE)
            elif tokens[0].startswith(SPIECE_UNDERLINE):
                tokens[0] = tokens[0][1:]
            out, sub, prev_special = "", [], False
            for i, token in enumerate(tokens):
                if token in specials:
                    if not prev_special and (self.style == "t5" or i != 0):
                        out += " "
                    out += self.sp_model.decode(sub) + token
                    prev_special, sub = True, []
                else:
                    sub.append(token)
                    prev_special = False
            out += self.sp_model.decode(sub)
            return out.strip() if self.style == "t5" else out

    return SlowSentencePiece


def _file(ref: str, name: str, trust_remote_code: bool) -> str | None:
    from transformers.utils import cached_file

    path = Path(ref).expanduser()
    if path.is_dir():
        return str(path / name) if (path / name).is_file() else None
    return cached_file(ref, name, _raise_exceptions_for_missing_entries=False)


def load_slow_sentencepiece(ref: str, trust_remote_code: bool = False):
    """The slow sentencepiece tokenizer of `ref` (a directory or hub id), as transformers 4 loaded it
    with `use_fast=False`; a `ConfigError` when it has none."""
    cfg_path = _file(ref, "tokenizer_config.json", trust_remote_code)
    cfg = json.loads(Path(cfg_path).read_text(encoding="utf-8")) if cfg_path else {}
    cls = cfg.get("tokenizer_class")
    style = SLOW_STYLES.get(cls or "")
    if style is None:
        raise ConfigError(
            f"use_fast: false: {ref}: tokenizer class {cls!r} has no slow sentencepiece tokenizer "
            f"jaflow can load on transformers 5 (supported: {sorted(SLOW_STYLES)}); set use_fast: true "
            "if the fast tokenizer is what you mean"
        )
    if cfg.get("legacy") is False:
        raise ConfigError(
            f"use_fast: false: {ref}: legacy=False {cls} tokenizers are not supported"
        )
    vocab = next((p for p in (_file(ref, n, trust_remote_code) for n in SPM_FILES) if p), None)
    if vocab is None:
        raise ConfigError(
            f"use_fast: false: {ref}: no sentencepiece model ({' / '.join(SPM_FILES)})"
        )
    specials: dict[str, Any] = {}
    map_path = _file(ref, "special_tokens_map.json", trust_remote_code)
    sources = [cfg] + ([json.loads(Path(map_path).read_text(encoding="utf-8"))] if map_path else [])
    for src in sources:
        for key in (
            "bos_token",
            "eos_token",
            "unk_token",
            "pad_token",
            "sep_token",
            "cls_token",
            "mask_token",
        ):
            if src.get(key) is not None:
                specials[key] = _token_text(src[key])
        if src.get("additional_special_tokens"):
            specials["additional_special_tokens"] = [
                _token_text(t) for t in src["additional_special_tokens"]
            ]
    if style == "llama":
        specials.update(
            add_bos_token=cfg.get("add_bos_token", True),
            add_eos_token=cfg.get("add_eos_token", False),
        )
    tok = _slow_class()(
        vocab_file=vocab,
        style=style,
        clean_up_tokenization_spaces=cfg.get("clean_up_tokenization_spaces", True),
        model_max_length=cfg.get("model_max_length", int(1e30)),
        **specials,
    )
    tok.name_or_path = ref
    return tok


def load_tokenizer(hf_args: dict[str, Any]):
    """The tokenizer of `hf_args`, with a pad token (EOS, else UNK) when it has none."""
    from transformers import AutoTokenizer

    ref = hf_args["tokenizer"] or hf_args["pretrained"]
    if hf_args["use_fast"] is False:
        tok = load_slow_sentencepiece(ref, hf_args["trust_remote_code"])
    else:
        # the pinned revision is the weights' one: it applies when the tokenizer comes with them
        revision = hf_args.get("revision") if ref == hf_args["pretrained"] else None
        tok = AutoTokenizer.from_pretrained(
            ref, trust_remote_code=hf_args["trust_remote_code"], revision=revision
        )
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token  # labels and attention masks cover padding
    return tok
