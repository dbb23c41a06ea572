"""The tiny world: tokenizer boundary property, and tiny models of each architecture."""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from jaflow.data.templates import TEMPLATES
from jaflow.tiny.instructions import make_instructions


@pytest.fixture(scope="module")
def tokenizer(tiny_tokenizer_dir):
    return AutoTokenizer.from_pretrained(tiny_tokenizer_dir)


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_prompt_answer_boundary_tokenises_the_same_alone_and_joined(tokenizer, name):
    # The trap in the reference's tiny-world notes: merges across the boundary break masking.
    for row in make_instructions(40, seed=3):
        rendered = TEMPLATES[name]().render(row)
        alone = (
            tokenizer(rendered.prompt, add_special_tokens=False)["input_ids"]
            + tokenizer(rendered.response, add_special_tokens=False)["input_ids"]
        )
        joined = tokenizer(rendered.text, add_special_tokens=False)["input_ids"]
        assert alone == joined, (name, rendered.prompt[-20:], rendered.response[:20])


def test_byte_fallback_round_trips_unseen_text(tokenizer):
    text = "გამარჯობა 吾輩は 猫である 😀"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids) == text


def test_special_tokens(tokenizer):
    assert tokenizer.eos_token == "</s>" and tokenizer.pad_token == "<pad>"
    assert tokenizer.decode([tokenizer.eos_token_id], skip_special_tokens=True) == ""


@pytest.mark.parametrize(
    "arch,cls",
    [
        ("llama", "LlamaForCausalLM"),
        ("gpt_neox", "GPTNeoXForCausalLM"),
        ("mistral", "MistralForCausalLM"),
    ],
)
def test_tiny_models_load_and_run(tiny_model, tokenizer, arch, cls):
    model = AutoModelForCausalLM.from_pretrained(tiny_model(arch))
    assert type(model).__name__ == cls
    ids = tokenizer("こんにちは。", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model(ids)
    assert out.logits.shape == (1, ids.shape[1], len(tokenizer))
    assert torch.isfinite(out.logits).all()


def test_tiny_models_are_deterministic(tiny_tokenizer_dir, tmp_path):
    from jaflow.io import sha256_tree
    from jaflow.tiny import build_model

    a = build_model("llama", tiny_tokenizer_dir, tmp_path / "a", seed=5)
    b = build_model("llama", tiny_tokenizer_dir, tmp_path / "b", seed=5)
    assert sha256_tree(a, (".safetensors",)) == sha256_tree(b, (".safetensors",))


@pytest.mark.parametrize("arch", ["llama", "gpt_neox", "mistral"])
def test_tiny_attention_starts_soft(tiny_model, arch):
    """Query and key weights start QUERY_KEY_SCALE smaller than the rest (values keep theirs), so
    a head's first attention is near uniform and an adapter can learn where to look."""
    from jaflow.tiny import INITIALIZER_RANGE, QUERY_KEY_SCALE

    model = AutoModelForCausalLM.from_pretrained(tiny_model(arch))
    weights = dict(model.named_parameters())
    if arch == "gpt_neox":
        heads = model.config.num_attention_heads
        qkv = weights["gpt_neox.layers.0.attention.query_key_value.weight"]
        rows = qkv.view(heads, 3, -1, qkv.shape[1])
        query, key, value = rows[:, 0], rows[:, 1], rows[:, 2]
    else:
        attn = "model.layers.0.self_attn"
        query, key, value = (weights[f"{attn}.{p}_proj.weight"] for p in "qkv")
    soft = INITIALIZER_RANGE * QUERY_KEY_SCALE
    for w in (query, key):
        assert w.std().item() == pytest.approx(soft, rel=0.2)
    assert value.std().item() == pytest.approx(INITIALIZER_RANGE, rel=0.2)
