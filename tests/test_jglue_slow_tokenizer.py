"""`use_fast: false` gives sentencepiece's own ids on transformers 5, through jaflow's loading path
(`jaflow.hf.load_tokenizer`, which training, MT-Bench and the JGLUE model and tasks use), or stops."""

from __future__ import annotations

import json

import pytest

from jaflow.errors import ConfigError
from jaflow.hf import load_tokenizer

TEXTS = [
    "ユーザー: 質問です<NL>システム: はい\n改行のあと\n\nふたつ",
    "絵文字😀と🍣、珍しい字「齉」や「𠮷」はバイトになる",
    "ＡＢＣ１２３ と half width abc 123   spaces",
    "<NL>で始まり\nで終わる\n",
]


def hf(path, use_fast=False):
    return {
        "pretrained": str(path),
        "peft": None,
        "tokenizer": None,
        "use_fast": use_fast,
        "trust_remote_code": False,
        "dtype": "auto",
    }


@pytest.fixture(scope="module")
def spm_model(tmp_path_factory):
    import sentencepiece as spm

    root = tmp_path_factory.mktemp("spm")
    # the texts once (their rare characters fall back to bytes), common text many times
    common = [
        "日本語の文章です。\n改行もあります。",
        "ユーザー: 質問<NL>システム: 分かりました。",
        "abc 123 ＡＢＣ",
    ]
    corpus = TEXTS + common * 200
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus),
        model_prefix=str(root / "sp"),
        vocab_size=330,
        hard_vocab_limit=False,
        model_type="unigram",
        byte_fallback=True,
        character_coverage=0.98,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=False,
        split_by_whitespace=False,
        allow_whitespace_only_pieces=True,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=3,
        minloglevel=2,
        num_threads=1,
    )
    return root / "sp.model", spm.SentencePieceProcessor(model_file=str(root / "sp.model"))


def write_tokenizer(dest, model_file, cls, **cfg):
    dest.mkdir(parents=True)
    name = "spiece.model" if cls.startswith("T5") else "tokenizer.model"
    (dest / name).write_bytes(model_file.read_bytes())
    config = {
        "tokenizer_class": cls,
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        **cfg,
    }
    if cls.startswith("Llama"):
        config["bos_token"] = "<s>"
    (dest / "tokenizer_config.json").write_text(json.dumps(config))
    return dest


@pytest.mark.parametrize("cls", ["T5Tokenizer", "LlamaTokenizer"])
def test_use_fast_false_gives_sentencepiece_ids(spm_model, tmp_path, cls):
    model_file, sp = spm_model
    tok = load_tokenizer(hf(write_tokenizer(tmp_path / "tok", model_file, cls)))
    for text in TEXTS:
        ids = sp.encode(text)
        assert tok.encode(text, add_special_tokens=False) == ids, text
        assert any(
            sp.id_to_piece(i).startswith("<0x") for t in TEXTS for i in sp.encode(t)
        )  # byte fallback used
        assert tok.decode(ids) == (text.strip() if cls == "T5Tokenizer" else text)  # newlines kept
    if cls == "T5Tokenizer":
        assert tok.encode("あ") == sp.encode("あ") + [tok.eos_token_id]
    else:
        assert tok.encode("あ") == [tok.bos_token_id] + sp.encode("あ")
    # transformers 5's own loading ignores use_fast: proof that the slow path is what makes the difference
    from transformers import AutoTokenizer

    fast = AutoTokenizer.from_pretrained(tmp_path / "tok", use_fast=False)
    assert any(fast.encode(t, add_special_tokens=False) != sp.encode(t) for t in TEXTS)


def test_training_and_evaluation_load_the_same_slow_tokenizer(spm_model, tmp_path):
    """Training (train.builders) and JGLUE evaluation (JpStableLM, JpStableTask) share the loader."""
    from jaflow.evaluate.jglue import task as jtask
    from jaflow.train import builders

    model_file, sp = spm_model
    path = write_tokenizer(tmp_path / "tok", model_file, "T5Tokenizer")
    train_tok = builders.load_tokenizer(hf(path))
    assert train_tok(TEXTS[0], add_special_tokens=False)["input_ids"] == sp.encode(TEXTS[0])
    meta = {
        "pretrained": str(path),
        "tokenizer": str(path),
        "use_fast": False,
        "trust_remote_code": False,
    }
    fake = type("T", (), {"config": type("C", (), {"metadata": meta})()})()
    eval_tok = jtask.JpStableTask._tokenizer.func(fake)
    assert eval_tok.encode(TEXTS[1], add_special_tokens=False) == sp.encode(TEXTS[1])


def test_use_fast_false_that_cannot_be_honoured_stops(tiny_tokenizer_dir):
    with pytest.raises(ConfigError, match="use_fast: false"):
        load_tokenizer(hf(tiny_tokenizer_dir))
