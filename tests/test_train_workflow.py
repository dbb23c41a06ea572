"""Real snakemake through rules train and select_checkpoint: tiny base -> qlora -> selected model.

The sampled dataset files are written by the test (the dataset rules are not under test here),
so only `train` and `select_checkpoint` are allowed to run.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time

import pytest
from train_world import write_dataset

pytestmark = pytest.mark.workflow

ALLOWED = ["--allowed-rules", "train", "select_checkpoint"]


def config(base: str) -> dict:
    return {
        "seed": 7,
        "datasets": {"syn": {"sources": [{"name": "syn", "path": "data/syn.jsonl"}]}},
        "models": {
            "base": {"pretrained": base},
            "tuned": {
                "from": "base",
                "method": "qlora",
                "dataset": "syn",
                "train": {
                    "lora_r": 8,
                    "learning_rate": 0.005,
                    "max_steps": 6,
                    "eval_steps": 3,
                    "logging_steps": 3,
                    "gradient_accumulation_steps": 1,
                    "per_device_train_batch_size": 8,
                    "max_length": 64,
                },
            },
        },
    }


def test_train_and_select_through_snakemake(run_workflow, tiny_model, tmp_path):
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    (work / "data" / "syn.jsonl").write_text("{}\n")
    old = time.time() - 3600
    os.utime(
        work / "data" / "syn.jsonl", (old, old)
    )  # older than the dataset files: nothing to resample
    write_dataset(work / "results" / "test" / "datasets" / "syn")
    cfg = config(str(tiny_model("llama")))
    run_workflow(
        "results/test/models/tuned", workdir=work, config=cfg, default_config=False, args=ALLOWED
    )

    model = work / "results" / "test" / "models" / "tuned"
    sel = json.loads((model / "selection.json").read_text())
    with open(work / "results" / "test" / "train" / "tuned" / "log_history.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [
        "step",
        "epoch",
        "train_loss",
        "eval_loss",
        "learning_rate",
        "tokens_seen",
    ]
    evals = {int(r["step"]): float(r["eval_loss"]) for r in rows if r["eval_loss"]}
    assert sorted(evals) == [3, 6]
    assert sel["metric"] == "eval_loss" and sel["mode"] == "min" and sel["adapter"] is True
    assert sel["value"] == min(evals.values()) and evals[sel["step"]] == sel["value"]
    assert sel["checkpoint"].endswith(
        f"results/test/train/tuned/checkpoints/checkpoint-{sel['step']}"
    )
    assert (model / "adapter_model.safetensors").is_file() and (model / "tokenizer.json").is_file()
    assert "adapter_model.safetensors" in (model / "checksums.sha256").read_text()
    assert (work / "logs" / "test" / "train" / "tuned.log").stat().st_size > 0

    # outputs lost (a preempted job never wrote them): the rerun resumes, it does not retrain
    for name in ("log_history.csv", "trainer_state.json"):
        (work / "results" / "test" / "train" / "tuned" / name).unlink()
    shutil.rmtree(model)
    again = run_workflow(
        "results/test/models/tuned", workdir=work, config=cfg, default_config=False, args=ALLOWED
    )
    assert "train" in again.stdout + again.stderr
    log = (work / "logs" / "test" / "train" / "tuned.log").read_text()
    assert "resuming from results/test/train/tuned/checkpoints/checkpoint-6" in log
    with open(work / "results" / "test" / "train" / "tuned" / "log_history.csv") as f:
        assert [r["eval_loss"] for r in csv.DictReader(f)] == [r["eval_loss"] for r in rows]
