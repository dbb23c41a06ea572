"""MoE merge (jaflow.merge) with the real mergekit-moe on tiny Llama models, on CPU."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file

from jaflow.errors import ConfigError
from jaflow.io import sha256_tree, verify_checksums
from jaflow.merge import merge_moe


@pytest.fixture(scope="module")
def tiny(tiny_model, tiny_tokenizer_dir, tmp_path_factory) -> dict[str, Path]:
    """Four distinct tiny Llamas on one tokenizer, plus misfits that must be refused."""
    from jaflow.tiny import build_model, build_tokenizer, template_texts

    root = tmp_path_factory.mktemp("merge_tiny")
    models = {"llama0": tiny_model("llama")}
    models |= {
        f"llama{i}": build_model("llama", tiny_tokenizer_dir, root / f"llama{i}", seed=i)
        for i in (1, 2, 3)
    }
    models["wide"] = build_model("llama", tiny_tokenizer_dir, root / "wide", hidden_size=96, seed=9)
    models["deep"] = build_model("llama", tiny_tokenizer_dir, root / "deep", num_layers=3, seed=9)
    build_tokenizer(
        template_texts() + ["別の語彙で学習したトークナイザー。"],
        root / "other_tokenizer",
        vocab_size=420,
    )
    models["other_vocab"] = build_model(
        "llama", root / "other_tokenizer", root / "other_vocab", seed=9
    )
    models["mistral"] = tiny_model("mistral")
    models["swapped_ids"] = retokenize(models["llama3"], root / "swapped_ids", swap_ids)
    models["other_eos"] = retokenize(models["llama3"], root / "other_eos", other_eos)
    return models


def retokenize(src: Path, out: Path, edit) -> Path:
    """A copy of `src` whose tokenizer files `edit` changed (same vocabulary size)."""
    shutil.copytree(src, out)
    edit(out)
    return out


def swap_ids(model_dir: Path) -> None:
    path = model_dir / "tokenizer.json"
    data = json.loads(path.read_text())
    vocab = data["model"]["vocab"]
    a, b = [t for t in vocab if not t.startswith("<")][:2]
    vocab[a], vocab[b] = vocab[b], vocab[a]
    path.write_text(json.dumps(data, ensure_ascii=False))


def other_eos(model_dir: Path) -> None:
    path = model_dir / "tokenizer_config.json"
    data = json.loads(path.read_text())
    data["eos_token"] = "<pad>"
    path.write_text(json.dumps(data, ensure_ascii=False))


def hf(path: Path, **kw) -> dict:
    return {
        "pretrained": str(path),
        "peft": None,
        "tokenizer": str(path),
        "use_fast": True,
        "trust_remote_code": False,
        "dtype": "auto",
        **kw,
    }


def spec(
    tiny,
    experts: list[str],
    *,
    base: str = "llama0",
    gate_mode: str = "random",
    experts_per_token: int = 2,
    prompts: dict[str, list[str]] | None = None,
) -> dict:
    """What workflow/rules/common.smk `merge_spec` hands the rule."""
    rows = []
    for name in experts:
        row = {"model": name, "hf": hf(tiny[name])}
        if prompts and name in prompts:
            row["positive_prompts"] = prompts[name]
        rows.append(row)
    return {
        "name": "moe",
        "base": dict(hf(tiny[base]), model=base),
        "experts": rows,
        "gate_mode": gate_mode,
        "experts_per_token": experts_per_token,
        "dtype": "bfloat16",
    }


def load_and_generate(out: Path):
    model = transformers.AutoModelForCausalLM.from_pretrained(out)
    tok = transformers.AutoTokenizer.from_pretrained(out)
    ids = tok("質問に答えて", return_tensors="pt").input_ids
    gen = model.generate(ids, max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id)
    assert gen.shape[1] == ids.shape[1] + 4
    return model, tok


def nothing_written(out: Path) -> bool:
    return not out.exists() and list(out.parent.iterdir()) == []


def test_random_merge_of_four_experts_loads_generates_and_keeps_each_expert(tiny, tmp_path):
    names = ["llama0", "llama1", "llama2", "llama3"]
    out = merge_moe(spec(tiny, names), tmp_path / "moe", seed=7)

    model, tok = load_and_generate(out)
    assert type(model).__name__ == "MixtralForCausalLM"
    assert model.config.num_local_experts == 4 and model.config.num_experts_per_tok == 2

    # Expert e of every layer is the MLP of the e-th expert, in order; attention is the base's.
    merged = model.state_dict()
    for e, name in enumerate(names):
        src = load_file(tiny[name] / "model.safetensors")
        for layer in range(4):
            p = f"model.layers.{layer}.mlp."
            gate_up = torch.cat([src[p + "gate_proj.weight"], src[p + "up_proj.weight"]]).bfloat16()
            assert torch.equal(merged[f"{p}experts.gate_up_proj"][e], gate_up)
            assert torch.equal(
                merged[f"{p}experts.down_proj"][e], src[p + "down_proj.weight"].bfloat16()
            )
    base = load_file(tiny["llama0"] / "model.safetensors")
    assert torch.equal(
        merged["model.layers.1.self_attn.q_proj.weight"],
        base["model.layers.1.self_attn.q_proj.weight"].bfloat16(),
    )

    # The base's tokenizer, unchanged (mergekit's own copy would pad on the left with bos).
    base_tok = transformers.AutoTokenizer.from_pretrained(tiny["llama0"])
    assert (
        tok.get_vocab() == base_tok.get_vocab()
        and tok.padding_side == base_tok.padding_side == "right"
    )
    assert tok.pad_token == "<pad>"

    record = json.loads((out / "merge.json").read_text())
    assert record["base"] == "llama0" and record["experts"] == names
    assert record["num_local_experts"] == 4 and record["num_experts_per_tok"] == 2
    assert record["mergekit_config"]["gate_mode"] == "random"
    assert [e["source_model"]["model"]["path"] for e in record["mergekit_config"]["experts"]] == [
        str(tiny[n]) for n in names
    ]
    assert set(record["versions"]) >= {"mergekit", "transformers", "torch"}
    assert record["versions"]["mergekit"] == "0.1.5"
    assert record["sha256"] == sha256_tree(out, suffixes=(".safetensors",)) and record["sha256"]
    assert (out / "mergekit_moe_config.yml").is_file()


def test_checksums_file_is_sha256sum_compatible_and_catches_tampering(tiny, tmp_path):
    out = merge_moe(spec(tiny, ["llama1", "llama2"]), tmp_path / "moe", seed=1)
    listed = [
        line.split("  ", 1)[1] for line in (out / "checksums.sha256").read_text().splitlines()
    ]
    assert (
        "model.safetensors" in listed
        and "merge.json" in listed
        and "checksums.sha256" not in listed
    )
    if shutil.which("sha256sum"):
        subprocess.run(["sha256sum", "--quiet", "-c", "checksums.sha256"], cwd=out, check=True)
    assert verify_checksums(out) == []
    (out / "config.json").write_text((out / "config.json").read_text() + " ")
    assert verify_checksums(out) == ["config.json"]


def test_same_seed_gives_identical_weights_and_another_seed_other_router(tiny, tmp_path):
    s = spec(tiny, ["llama1", "llama2", "llama3"])
    a = merge_moe(s, tmp_path / "a", seed=3)
    b = merge_moe(s, tmp_path / "b", seed=3)
    c = merge_moe(s, tmp_path / "c", seed=4)
    assert sha256_tree(a, (".safetensors",)) == sha256_tree(b, (".safetensors",))
    wa, wc = load_file(a / "model.safetensors"), load_file(c / "model.safetensors")
    assert not torch.equal(
        wa["model.layers.0.mlp.gate.weight"], wc["model.layers.0.mlp.gate.weight"]
    )
    assert torch.equal(
        wa["model.layers.0.mlp.experts.down_proj"], wc["model.layers.0.mlp.experts.down_proj"]
    )


PROMPTS = {  # `hidden` reads each prompt's last token: end them differently
    "llama1": ["次の足し算の答えを数字で書いて", "数学の問題"],
    "llama2": ["物語を書いてください"],
    "llama3": ["挨拶して", "こんにちは"],
}


@pytest.mark.parametrize("gate_mode", ["hidden", "cheap_embed"])
def test_prompt_gates_route_by_positive_prompts(tiny, tmp_path, gate_mode):
    names = ["llama1", "llama2", "llama3"]
    out = merge_moe(
        spec(tiny, names, gate_mode=gate_mode, prompts=PROMPTS), tmp_path / "moe", seed=0
    )
    model, _ = load_and_generate(out)
    assert model.config.num_local_experts == 3 and model.config.num_experts_per_tok == 2

    gates = [model.state_dict()[f"model.layers.{i}.mlp.gate.weight"].float() for i in range(4)]
    for g in gates:  # one unit-norm row per expert, each from its own prompts
        assert torch.allclose(g.norm(dim=-1), torch.ones(3), atol=1e-2)
        assert not torch.allclose(g[0], g[1]) and not torch.allclose(g[1], g[2])
    if gate_mode == "cheap_embed":  # summed prompt embeddings: the same rows in every layer
        assert all(torch.equal(gates[0], g) for g in gates)
        tok = transformers.AutoTokenizer.from_pretrained(tiny["llama0"])
        embed = load_file(tiny["llama0"] / "model.safetensors")["model.embed_tokens.weight"]
        ids = [
            i
            for p in PROMPTS["llama2"]
            for i in tok(tok.bos_token + p, add_special_tokens=False).input_ids
        ]
        expected = embed[ids].sum(0)
        assert torch.allclose(
            gates[0][1], (expected / expected.norm()).bfloat16().float(), atol=1e-2
        )
    else:  # hidden states of the base: a different row per layer
        assert not any(torch.allclose(gates[0], g) for g in gates[1:])
    assert (
        json.loads((out / "merge.json").read_text())["mergekit_config"]["experts"][0][
            "positive_prompts"
        ]
        == PROMPTS["llama1"]
    )


def test_prompt_gate_without_prompts_is_refused_naming_the_expert(tiny, tmp_path):
    s = spec(tiny, ["llama1", "llama2"], gate_mode="hidden", prompts={"llama1": PROMPTS["llama1"]})
    with pytest.raises(
        ConfigError, match=r"models\.moe\.experts\[1\]\.positive_prompts: expert 'llama2'"
    ):
        merge_moe(s, tmp_path / "out" / "moe")
    assert not (tmp_path / "out").exists() or nothing_written(tmp_path / "out" / "moe")


@pytest.mark.parametrize(
    ("misfit", "field"),
    [
        ("wide", "hidden_size"),
        ("deep", "num_hidden_layers"),
        ("other_vocab", "vocab_size"),
        ("swapped_ids", "tokenizer vocabulary"),
        ("other_eos", "tokenizer eos_token"),
        ("mistral", "model_type"),
    ],
)
def test_mismatched_expert_is_refused_naming_both_models_and_field(tiny, tmp_path, misfit, field):
    out = tmp_path / "models" / "moe"
    out.parent.mkdir()
    with pytest.raises(ConfigError) as err:
        merge_moe(spec(tiny, ["llama1", misfit, "llama2"]), out)
    message = str(err.value)
    assert "models.moe.experts[1]" in message and field in message
    assert f"'{misfit}' ({tiny[misfit]})" in message and f"'llama0' ({tiny['llama0']})" in message
    assert nothing_written(out)


def test_peft_expert_is_refused(tiny, tmp_path):
    s = spec(tiny, ["llama1", "llama2"])
    s["experts"][0]["hf"]["peft"] = "results/models/adapter"
    with pytest.raises(ConfigError, match=r"experts\[0\]: model 'llama1' .* is a peft adapter"):
        merge_moe(s, tmp_path / "moe")
    assert nothing_written(tmp_path / "moe")


def test_mergekit_refusals_become_config_errors(tiny, tmp_path):
    with pytest.raises(ConfigError, match="at least as many experts as experts_per_token"):
        merge_moe(spec(tiny, ["llama1", "llama2"], experts_per_token=3), tmp_path / "moe")
    with pytest.raises(ConfigError, match="prompts are identical"):
        same = {"llama1": ["同じ"], "llama2": ["同じ"]}
        merge_moe(
            spec(tiny, ["llama1", "llama2"], gate_mode="cheap_embed", prompts=same),
            tmp_path / "moe",
        )
    with pytest.raises(ConfigError, match="All of your expert models are the same"):
        s = spec(tiny, ["llama1", "llama2"], gate_mode="cheap_embed", prompts=PROMPTS)
        s["experts"][1]["hf"] = s["experts"][0]["hf"]
        merge_moe(s, tmp_path / "moe")
    assert nothing_written(tmp_path / "moe")


def test_failure_inside_mergekit_leaves_no_output(tiny, tmp_path):
    broken = tmp_path / "src" / "broken"
    shutil.copytree(tiny["llama3"], broken)
    (
        broken / "model.safetensors"
    ).unlink()  # config and tokenizer pass the checks; weights are gone
    s = spec(tiny, ["llama1", "llama2"])
    s["experts"][1] = {"model": "broken", "hf": hf(broken)}
    out = tmp_path / "models" / "moe"
    out.parent.mkdir()
    with pytest.raises(Exception):  # noqa: B017 - whatever mergekit raises, nothing may be left behind
        merge_moe(s, out)
    assert nothing_written(out)


def test_seed_004_hub_experts_make_a_valid_mergekit_config_without_touching_the_hub():
    """Seed 004: Swallow-7b-hf base, four hub experts, gate_mode random (mergekit downloads them itself)."""
    from mergekit.moe.config import MoEMergeConfig

    from jaflow.merge import check_spec, mergekit_config

    hub = [
        "tokyotech-llm/Swallow-7b-instruct-hf",
        "nitky/Superswallow-7b-v0.1",
        "nitky/Superswallow-7b-v0.2",
        "nitky/Superswallow-7b-v0.3",
    ]
    s = {
        "name": "swallow_moe",
        "base": dict(hf("tokyotech-llm/Swallow-7b-hf"), model="swallow"),
        "experts": [{"model": h.split("/")[1], "hf": hf(h)} for h in hub],
        "gate_mode": "random",
        "experts_per_token": 2,
        "dtype": "bfloat16",
    }
    check_spec(s)  # offline: nothing here downloads
    parsed = MoEMergeConfig.model_validate(mergekit_config(s))
    assert (
        parsed.base_model.model.path == "tokyotech-llm/Swallow-7b-hf"
        and parsed.base_model.lora is None
    )
    assert [e.source_model.model.path for e in parsed.experts] == hub
    assert (
        parsed.architecture == "Mixtral"
        and parsed.dtype == "bfloat16"
        and parsed.experts_per_token == 2
    )


def test_base_outside_mixtral_inputs_is_refused(tiny, tiny_model, tmp_path):
    s = spec(tiny, ["llama1", "llama2"])
    s["base"] = dict(hf(tiny_model("gpt_neox")), model="neox")
    with pytest.raises(
        ConfigError, match=r"models\.moe\.base: model 'neox' .* model_type='gpt_neox'"
    ):
        merge_moe(s, tmp_path / "moe")
    assert nothing_written(tmp_path / "moe")
