"""The jglue rules through real snakemake: local upstream-format data -> jglue_data -> jglue
(lm-eval) -> scores.csv; and training -> evaluation with marc_ja accuracy rising."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from jaflow.tiny import build_model, build_tokenizer, iter_texts
from jaflow.tiny.jglue import write_marc_train, write_tiny_jglue

pytestmark = pytest.mark.workflow


def scores(path: Path) -> dict[tuple[str, str], float]:
    with open(path, newline="") as f:
        return {(r["task"], r["metric"]): float(r["value"]) for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, str]:
    """Upstream-layout tiny JGLUE files, the synthetic MARC-ja train set, and a 2-layer Llama
    whose tokenizer knows their text."""
    root = tmp_path_factory.mktemp("jglue_world")
    write_tiny_jglue(root / "jglue", 40, seed=11)
    write_marc_train(root / "marc_train.jsonl", 400, seed=11)
    build_tokenizer(
        iter_texts([root / "jglue", root / "marc_train.jsonl"]), root / "tok", vocab_size=400
    )
    model = build_model("llama", root / "tok", root / "llama", num_layers=2, seed=0)
    return {
        "jglue": str(root / "jglue"),
        "marc_train": str(root / "marc_train.jsonl"),
        "model": str(model),
    }


def test_workflow_evaluates_a_base_model_on_jglue4(run_workflow, world):
    config = {
        "seed": 1234,
        "models": {"base": {"pretrained": world["model"]}},
        "jglue": {
            "data_dir": world["jglue"],
            "runs": [{"suite": "jglue4", "models": ["base"]}],
            "limit": 4,
        },
    }
    proc = run_workflow(
        "results/test/jglue/jglue4/base/scores.csv", default_config=False, config=config
    )
    out = proc.workdir / "results/test/jglue/jglue4/base"
    got = scores(out / "scores.csv")
    assert {
        ("jsquad", "exact_match"),
        ("jcommonsenseqa", "acc"),
        ("jnli", "acc"),
        ("marc_ja", "acc"),
    } <= set(got)
    assert (out / "results.json").is_file() and (out / "samples_marc_ja-1.1-0.3.jsonl").is_file()
    assert (proc.workdir / "results/test/jglue/data/marc_ja/validation.jsonl").is_file()
    assert "jglue:" in (proc.workdir / "logs/test/jglue/jglue4/base.log").read_text()


def test_workflow_training_raises_marc_ja_accuracy(run_workflow, world):
    config = {
        "seed": 1234,
        "datasets": {
            "marc": {
                "template": "alpaca_ja",
                "validation": {"size": 16},
                "sources": [{"name": "tiny_marc", "path": world["marc_train"]}],
            }
        },
        "models": {
            "base": {"pretrained": world["model"]},
            "tuned": {
                "from": "base",
                "method": "full",
                "dataset": "marc",
                "train": {
                    "learning_rate": 0.003,
                    "max_steps": 250,
                    "per_device_train_batch_size": 16,
                    "gradient_accumulation_steps": 1,
                    "eval_steps": 125,
                    "warmup_ratio": 0.0,
                    "lr_scheduler_type": "constant",
                    "max_length": 128,
                },
            },
        },
        "jglue": {
            "data_dir": world["jglue"],
            "limit": 40,
            "suites": {
                "marc": [{"task": "marc_ja", "version": "1.1", "template": "0.3", "num_fewshot": 0}]
            },
            "runs": [{"suite": "marc", "models": ["base", "tuned"]}],
        },
    }
    proc = run_workflow(
        "results/test/jglue/marc/base/scores.csv",
        "results/test/jglue/marc/tuned/scores.csv",
        default_config=False,
        config=config,
    )
    before = scores(proc.workdir / "results/test/jglue/marc/base/scores.csv")[("marc_ja", "acc")]
    after = scores(proc.workdir / "results/test/jglue/marc/tuned/scores.csv")[("marc_ja", "acc")]
    print(f"workflow marc_ja acc: base {before:.3f} -> tuned {after:.3f}")
    assert before < 0.7, before
    assert after > 0.8, (before, after)
