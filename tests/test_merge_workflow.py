"""The merge_moe rule through real snakemake: tiny bases, a trained expert, then LISA on the MoE."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file

from jaflow.io import verify_checksums, write_jsonl

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def bases(tiny_model, tiny_tokenizer_dir, tmp_path_factory) -> dict[str, str]:
    """Four tiny Llamas (distinct seeds, one tokenizer) and one of another hidden size."""
    from jaflow.tiny import build_model

    root = tmp_path_factory.mktemp("merge_bases")
    paths = {"base": tiny_model("llama")}
    paths |= {
        f"e{i}": build_model("llama", tiny_tokenizer_dir, root / f"e{i}", seed=i) for i in (1, 2, 3)
    }
    paths["wide"] = build_model("llama", tiny_tokenizer_dir, root / "wide", hidden_size=96, seed=9)
    return {name: str(p) for name, p in paths.items()}


@pytest.fixture(scope="module")
def instructions(tmp_path_factory) -> str:
    from jaflow.tiny.instructions import make_instructions

    path = tmp_path_factory.mktemp("merge_data") / "instructions.jsonl"
    write_jsonl(path, make_instructions(80, seed=0))
    return str(path)


def config(bases: dict[str, str], models: dict, instructions: str | None = None) -> dict:
    cfg = {"seed": 7, "models": {name: {"pretrained": p} for name, p in bases.items()} | models}
    if instructions:
        cfg["datasets"] = {
            "mix": {"sources": [{"name": "tiny", "path": instructions}], "validation": {"size": 8}}
        }
    return cfg


def moe_node(experts: list, **kw) -> dict:
    return {
        "base": "base",
        "experts": experts,
        "gate_mode": "random",
        "experts_per_token": 2,
        "dtype": "float32",
        **kw,
    }


def test_workflow_merges_four_tiny_bases(run_workflow, bases):
    proc = run_workflow(
        "results/test/models/moe",
        default_config=False,
        config=config(bases, {"moe": moe_node(["base", "e1", "e2", {"model": "e3"}])}),
    )
    out = proc.workdir / "results/test/models/moe"
    model = transformers.AutoModelForCausalLM.from_pretrained(out)
    assert type(model).__name__ == "MixtralForCausalLM"
    assert model.config.num_local_experts == 4 and model.config.num_experts_per_tok == 2
    tok = transformers.AutoTokenizer.from_pretrained(out)
    ids = tok("こんにちは", return_tensors="pt").input_ids
    assert model.generate(ids, max_new_tokens=3, do_sample=False).shape[1] == ids.shape[1] + 3
    record = json.loads((out / "merge.json").read_text())
    assert (
        record["name"] == "moe"
        and record["base"] == "base"
        and record["experts"] == ["base", "e1", "e2", "e3"]
    )
    assert record["seed"] == 7 and record["mergekit_config"]["dtype"] == "float32"
    assert verify_checksums(out) == []
    assert "mergekit-moe: 4 experts" in (proc.workdir / "logs/test/merge/moe.log").read_text()


def test_workflow_refuses_mismatched_expert_and_writes_no_model(run_workflow, bases):
    proc = run_workflow(
        "results/test/models/moe",
        default_config=False,
        check=False,
        config=config(bases, {"moe": moe_node(["e1", "wide"])}),
    )
    assert proc.returncode != 0
    log = (proc.workdir / "logs/test/merge/moe.log").read_text()
    assert (
        "models.moe.experts[1]: expert 'wide'" in log
        and "base 'base'" in log
        and "hidden_size differs" in log
    )
    assert not (proc.workdir / "results/test/models/moe").exists()


@pytest.fixture(scope="module")
def trained_chain(tmp_path_factory, bases, instructions) -> Path:
    """Seed 004's order on tiny models, in one run: LoRA-train an expert, merge it, LISA-train the MoE."""
    from conftest import snakemake

    short = {
        "learning_rate": 0.001,
        "max_steps": 4,
        "eval_steps": 2,
        "logging_steps": 1,
        "gradient_accumulation_steps": 1,
        "max_length": 64,
    }
    models = {
        "tuned": {
            "from": "base",
            "method": "lora",
            "dataset": "mix",
            "train": dict(short, lora_r=4),
        },
        "moe": moe_node(["base", "tuned", "e1", "e2"]),
        "moe_lisa": {
            "from": "moe",
            "method": "lisa",
            "dataset": "mix",
            "train": dict(short, lisa_layers=1, lisa_interval=2),
        },
    }
    work = tmp_path_factory.mktemp("merge_chain")
    snakemake(
        work,
        "results/test/models/moe_lisa",
        default_config=False,
        config=config(bases, models, instructions),
    )
    return work


def test_workflow_merges_a_trained_expert(trained_chain, bases):
    work = trained_chain
    record = json.loads((work / "results/test/models/moe/merge.json").read_text())
    assert record["experts"] == ["base", "tuned", "e1", "e2"]
    # Expert 1 of the MoE is the trained model's MLP (its adapter merged into full weights).
    moe = transformers.AutoModelForCausalLM.from_pretrained(
        work / "results/test/models/moe"
    ).state_dict()
    trained = transformers.AutoModelForCausalLM.from_pretrained(
        work / "results/test/models/tuned"
    ).state_dict()
    base = load_file(Path(bases["base"]) / "model.safetensors")
    p = "model.layers.0.mlp."
    assert torch.equal(moe[p + "experts.down_proj"][1], trained[p + "down_proj.weight"])
    assert not torch.equal(trained[p + "down_proj.weight"], base[p + "down_proj.weight"])


def test_workflow_trains_the_merged_moe_with_lisa(trained_chain):
    work = trained_chain
    with open(work / "results/test/train/moe_lisa/log_history.csv") as f:
        rows = list(csv.DictReader(f))
    losses = [float(r["train_loss"]) for r in rows if r["train_loss"]]
    assert len(losses) >= 4 and all(math.isfinite(x) for x in losses)
    tuned = transformers.AutoModelForCausalLM.from_pretrained(work / "results/test/models/moe_lisa")
    assert type(tuned).__name__ == "MixtralForCausalLM" and tuned.config.num_local_experts == 4
    merged = transformers.AutoModelForCausalLM.from_pretrained(
        work / "results/test/models/moe"
    ).state_dict()
    after = tuned.state_dict()
    # LISA always trains embeddings and head, and some decoder layers of the MoE.
    assert not torch.equal(merged["model.embed_tokens.weight"], after["model.embed_tokens.weight"])
    assert any(
        not torch.equal(merged[k], after[k]) for k in merged if k.startswith("model.layers.")
    )
