"""jp-stable's request semantics as an lm-eval 0.4 model (`jaflow-jp-stable`, a subclass of HFLM).

The Stability-AI lm-evaluation-harness (branch jp-stable) scores with its own `hf-causal`
(`gpt2.HFLM`) and `hf-causal-experimental` (`huggingface.AutoCausalLM`) models. Below the
prompt they differ from lm-eval 0.4's `hf` model, and multiple-choice answers flip with it:

- no special tokens are ever added (lm-eval uses the tokenizer's defaults: `<s>` before every
  context for Llama-type tokenizers, `</s>` after every string for T5-type ones);
- context and continuation are tokenized separately and concatenated; lm-eval moves the
  context's trailing whitespace into the continuation and tokenizes them together;
- an empty context (xwinograd) is the EOS token (lm-eval: BOS when the tokenizer has one);
- generation, per `harness`:
  - `hf-causal`: one request at a time, at most the request's `max_gen_toks` new tokens;
    generation stops only on the last token of the first stop string (the model's own end
    token does not stop it), the text is decoded with special tokens kept and cut at every
    stop string (so `'ない</s>余分'` stays as it is);
  - `hf-causal-experimental`: `batch_size` requests at a time, left-padded, up to
    `max_gen_toks` (256) new tokens whatever the request asks, stopping on the stop strings and
    on the model's end token, decoded without special tokens, cut at every stop string.

Log-likelihoods are batched (`batch_size` of lm-eval; right padding cannot change a causal
model's scores) independently of the generation batch (`gen_batch_size`).
"""

from __future__ import annotations

from typing import Any

import torch
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

from jaflow.errors import ConfigError
from jaflow.evaluate.jglue.suites import JP_STABLE_HARNESSES as HARNESSES

MODEL_NAME = "jaflow-jp-stable"
JP_STABLE_MAX_GEN_TOKS = 256


def jp_stable_left_cut(ids: list[int], max_gen_toks: int, max_length: int) -> list[int]:
    """jp-stable's context truncation `ids[max_gen_toks - max_length:]`, as it slices."""
    return ids[max_gen_toks - max_length :]


def cut_at_stops(text: str, until: list[str]) -> str:
    for term in until:
        text = text.split(term)[0]
    return text


@register_model(MODEL_NAME)
class JpStableLM(HFLM):
    """lm-eval's HF model with jp-stable's tokenization and generation (module docstring)."""

    def __init__(
        self,
        *args: Any,
        harness: str = "hf-causal",
        task_harness: dict[str, str] | None = None,
        gen_batch_size: int = 1,
        **kwargs: Any,
    ):
        for h in [harness, *(task_harness or {}).values()]:
            if h not in HARNESSES:
                raise ConfigError(
                    f"jglue.harness: '{h}' is not a jp-stable harness (one of {list(HARNESSES)})"
                )
        kwargs.setdefault("backend", "causal")
        super().__init__(*args, **kwargs)
        self.harness = harness
        self.task_harness = dict(task_harness or {})
        self.gen_batch_size = int(gen_batch_size)
        # transformers 4 cleaned up decoded text unless the tokenizer config said not to; 5 skips it for BPE
        self.cleanup = bool(self.tokenizer.init_kwargs.get("clean_up_tokenization_spaces", True))

    def jp_decode(self, ids: list[int], skip_special_tokens: bool) -> str:
        """Decoded text as transformers 4 gave it to jp-stable."""
        text = self.tokenizer.decode(
            ids, skip_special_tokens=skip_special_tokens, clean_up_tokenization_spaces=False
        )
        return self.tokenizer.clean_up_tokenization(text) if self.cleanup else text

    # -- tokenization -------------------------------------------------------------------------

    @property
    def prefix_token_id(self) -> int:
        return self.tokenizer.eos_token_id  # jp-stable: an empty context is EOT

    def tok_encode(
        self,
        string: str,
        add_special_tokens: bool | None = None,
        left_truncate_len: int | None = None,
        **kwargs: Any,
    ) -> list[int]:
        ids = self.tokenizer.encode(string, add_special_tokens=False)
        return ids[-left_truncate_len:] if left_truncate_len else ids

    def encode_request(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """jp-stable's `BaseLM.loglikelihood` encoding of one (context, continuation)."""
        context_enc = [self.eot_token_id] if context == "" else self.tok_encode(context)
        return context_enc, self.tok_encode(continuation)

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        new_reqs = [((c, x), *self.encode_request(c, x)) for c, x in (r.args for r in requests)]
        return self._loglikelihood_tokens(new_reqs, disable_tqdm=disable_tqdm)

    # -- generation ---------------------------------------------------------------------------

    def harness_of(self, task_name: str | None) -> str:
        return self.task_harness.get(task_name or "", self.harness)

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        out: list[str | None] = [None] * len(requests)
        by_harness: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            by_harness.setdefault(self.harness_of(getattr(r, "task_name", None)), []).append(i)
        for harness, idx in by_harness.items():
            run = self.generate_causal if harness == "hf-causal" else self.generate_experimental
            for i, text in zip(idx, run([requests[i].args for i in idx]), strict=True):
                out[i] = text
        return out  # type: ignore[return-value]

    @staticmethod
    def _until(gen: dict[str, Any]) -> list[str]:
        until = gen.get("until") or []
        return [until] if isinstance(until, str) else list(until)

    def generate_causal(self, reqs: list[tuple[str, dict[str, Any]]]) -> list[str]:
        """jp-stable `hf-causal` (`BaseLM.greedy_until` + `gpt2.HFLM._model_generate`)."""
        res: dict[tuple[str, tuple[str, ...], int], str] = {}
        out = []
        for context, gen in reqs:
            until = self._until(gen)
            max_gen = int(gen.get("max_gen_toks") or JP_STABLE_MAX_GEN_TOKS)
            key = (context, tuple(until), max_gen)
            if key not in res:
                stop_ids = self.tok_encode(until[0]) if until else []
                primary = stop_ids[-1] if stop_ids else self.tokenizer.eos_token_id
                ctx = jp_stable_left_cut(self.tok_encode(context), max_gen, self.max_length)
                ids = torch.tensor([ctx], dtype=torch.long, device=self.device)
                with torch.no_grad():
                    gen_ids = self.model.generate(
                        ids,
                        attention_mask=torch.ones_like(ids),
                        max_length=ids.shape[1] + max_gen,
                        eos_token_id=primary,
                        pad_token_id=primary,
                        do_sample=False,
                    )
                text = self.jp_decode(
                    gen_ids[0].tolist()[ids.shape[1] :], skip_special_tokens=False
                )
                res[key] = cut_at_stops(text, until)
            out.append(res[key])
        return out

    def decode_experimental(self, rows: list[list[int]]) -> list[str]:
        """Decoded as jp-stable's AutoCausalLM does, whose tokenizer has pad_token = eos_token (so a
        former pad token such as T5's <pad> is no longer special and stays in the text)."""
        tok = self.tokenizer
        saved = tok.pad_token
        tok.pad_token = tok.eos_token
        try:
            return [self.jp_decode(row, skip_special_tokens=True) for row in rows]
        finally:
            tok.pad_token = saved

    def generate_experimental(self, reqs: list[tuple[str, dict[str, Any]]]) -> list[str]:
        """jp-stable `hf-causal-experimental` (`HuggingFaceAutoLM.greedy_until`, `AutoCausalLM`)."""
        from lm_eval.models.utils_hf import stop_sequences_criteria

        # jp-stable's Reorderer: by (context length in tokens, context); equal keys share a result
        keys = sorted({(len(self.tok_encode(c)), c) for c, _ in reqs})
        first_gen = {}
        for c, gen in reqs:
            first_gen.setdefault(c, gen)
        eos = self.tokenizer.eos_token
        max_gen = JP_STABLE_MAX_GEN_TOKS
        res: dict[str, str] = {}
        tok = self.tokenizer
        pad = tok.eos_token_id  # jp-stable sets pad = eos and pads on the left
        for start in range(0, len(keys), self.gen_batch_size):
            contexts = [c for _, c in keys[start : start + self.gen_batch_size]]
            until = self._until(first_gen[contexts[0]]) + ([eos] if eos else [])
            encoded = [self.tok_encode(c) for c in contexts]
            full_len = max(len(e) for e in encoded)
            ids = torch.tensor([[pad] * (full_len - len(e)) + e for e in encoded], dtype=torch.long)
            mask = torch.tensor(
                [[0] * (full_len - len(e)) + [1] * len(e) for e in encoded], dtype=torch.long
            )
            input_ids = ids[:, max_gen - self.max_length :].to(self.device)
            mask = mask[:, max_gen - self.max_length :].to(self.device)
            criteria = stop_sequences_criteria(tok, until, input_ids.shape[1], input_ids.shape[0])
            with torch.no_grad():
                gen_ids = self.model.generate(
                    input_ids=input_ids,
                    attention_mask=mask,
                    max_new_tokens=max_gen,
                    stopping_criteria=criteria,
                    do_sample=False,
                    pad_token_id=pad,
                )
            texts = self.decode_experimental(gen_ids[:, full_len:].tolist())
            for c, text in zip(contexts, texts, strict=True):
                res[c] = cut_at_stops(text, until)
        return [res[c] for c, _ in reqs]
