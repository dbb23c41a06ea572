"""The train job re-launches itself on 2 CPU processes (torchrun, gloo) and both take part."""

from __future__ import annotations

import json
import os
from pathlib import Path

from train_world import make_job, train_world  # noqa: F401  (fixture)

from jaflow.train import resume
from jaflow.train.launch import nproc, run

REPO = Path(__file__).resolve().parents[1]


def test_nproc_from_resources_and_env():
    assert nproc({}, env={}) == 1
    assert nproc({"gpu": 4}, env={}) == 4
    assert nproc({"tasks": 2}, env={}) == 2
    assert nproc({"gpu": 4}, env={"JAFLOW_NPROC": "2"}) == 2


def test_two_process_gloo_ddp(train_world, tmp_path, capfd, monkeypatch):  # noqa: F811
    monkeypatch.setenv("PYTHONPATH", str(REPO / "src"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    job = make_job(
        train_world,
        tmp_path / "ddp",
        "lora",
        max_steps=4,
        eval_steps=2,
        logging_steps=2,
        per_device_train_batch_size=8,
    )
    run(job, 2)
    out = capfd.readouterr()
    text = out.out + out.err
    assert "rank 0/2: ddp (lora)" in text and "rank 1/2: ddp (lora)" in text, text[-3000:]
    assert text.count(" wrote ") == 1 and "rank 0 wrote" in text  # outputs saved once, by rank 0
    state = json.loads((tmp_path / "ddp" / "trainer_state.json").read_text())
    # 160 examples / (2 processes x 8) = 10 steps per epoch (one process would need 20)
    assert state["global_step"] == 4 and abs(state["epoch"] - 0.4) < 1e-9
    tokens = [e["num_input_tokens_seen"] for e in state["log_history"] if "loss" in e]
    assert tokens[0] > 0
    assert [p.name for p in resume.complete_checkpoints(tmp_path / "ddp" / "checkpoints")] == [
        "checkpoint-2",
        "checkpoint-4",
    ]
    assert os.path.isfile(tmp_path / "ddp" / "log_history.csv")
