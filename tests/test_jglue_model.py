"""JpStableLM (lm-eval's HFLM with jp-stable's request semantics): what differs from plain lm-eval.

tests/test_jglue_parity.py proves equality with jp-stable itself; these pin the individual rules."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

PARITY = Path(__file__).resolve().parent / "parity"
sys.path.insert(0, str(PARITY))

import hashlm  # noqa: E402


@pytest.fixture(scope="module")
def lms(tmp_path_factory):
    from lm_eval.models.huggingface import HFLM

    from jaflow.evaluate.jglue.model import JpStableLM
    from jaflow.hf import load_tokenizer

    hashlm.register()
    tok_dir = PARITY / "goldens" / "tokenizers" / "bpe_llama"
    model_dir = tmp_path_factory.mktemp("hash") / "m"
    hashlm.save(model_dir, json.loads((tok_dir / "hashlm.json").read_text()))
    hf = {
        "pretrained": str(tok_dir),
        "tokenizer": None,
        "use_fast": True,
        "trust_remote_code": False,
    }
    jp = JpStableLM(
        pretrained=str(model_dir), tokenizer=load_tokenizer(hf), device="cpu", batch_size=4
    )
    plain = HFLM(
        pretrained=str(model_dir), tokenizer=load_tokenizer(hf), device="cpu", batch_size=4
    )
    return jp, plain


def test_registered_in_lm_eval_registry():
    from lm_eval.api.registry import get_model

    from jaflow.evaluate.jglue.model import MODEL_NAME, JpStableLM

    assert get_model(MODEL_NAME) is JpStableLM


def test_no_special_tokens_and_context_tokenized_apart(lms):
    jp, plain = lms
    tok = jp.tokenizer
    context, answer = "質問：日本の首都は？\n回答: ", "東京"
    ctx, cont = jp.encode_request(context, answer)
    assert ctx == tok.encode(
        context, add_special_tokens=False
    )  # no <s>, trailing space stays in the context
    assert cont == tok.encode(answer, add_special_tokens=False)
    p_ctx, p_cont = plain._encode_pair(context, answer)
    assert p_ctx[0] == tok.bos_token_id  # lm-eval: the tokenizer's <s>
    assert tok.decode(p_cont).startswith(" ")  # lm-eval: the space moved into the answer


def test_empty_context_is_eos_even_with_a_distinct_bos(lms):
    jp, plain = lms
    assert jp.tokenizer.bos_token_id != jp.tokenizer.eos_token_id
    assert jp.encode_request("", "猫は寝る。")[0] == [jp.tokenizer.eos_token_id]
    assert plain.prefix_token_id == jp.tokenizer.bos_token_id


def test_harness_names_are_checked(lms):
    from jaflow.errors import ConfigError
    from jaflow.evaluate.jglue.model import JpStableLM

    with pytest.raises(ConfigError, match="jglue.harness"):
        JpStableLM.__init__(object.__new__(JpStableLM), pretrained="x", harness="hf")
