"""FSDP (FSDP2 through the Trainer) on 2 gloo processes equals one process at the same global
batch; a SIGKILLed FSDP run resumes to the uninterrupted result; the selected model loads.

Tolerance: the two runs compute the same sums in a different order (per-rank partial sums of
the token losses, then an all-reduce/reduce-scatter of fp32 gradients, against one process
summing the two micro-batches), so they agree to fp32 rounding, not bitwise. After a few Adam
steps at lr 3e-3 that rounding is amplified (Adam divides by sqrt(v), so a 1e-7 relative change
in a small gradient moves a weight by up to lr); losses of ~6 agree to ~1e-5 here. We allow
2e-4 absolute per logged loss: 20x the observed spread, and 1000x below the per-step change
of the loss (~0.2), so a wrong batch, a missing shard or a doubled gradient would fail.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from train_world import build_mixtral, make_job, train_world  # noqa: F401  (fixture)

from jaflow.train import resume
from jaflow.train.launch import run

REPO = Path(__file__).resolve().parents[1]
TOL = 2e-4


@pytest.fixture
def dist_env(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(REPO / "src"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.delenv("JAFLOW_NPROC", raising=False)


def losses(out_dir: Path) -> list[float]:
    state = json.loads((out_dir / "trainer_state.json").read_text())
    return [e["loss"] for e in state["log_history"] if "loss" in e]


def fsdp_job(world, out, method, model_dir=None, **train):
    return make_job(
        world,
        out,
        method,
        model_dir=model_dir,
        max_steps=4,
        eval_steps=2,
        logging_steps=1,
        per_device_train_batch_size=4,
        global_batch_size=8,
        distributed={"strategy": "fsdp"},
        **train,
    )


def single_job(world, out, method, model_dir=None, **train):
    return make_job(
        world,
        out,
        method,
        model_dir=model_dir,
        max_steps=4,
        eval_steps=2,
        logging_steps=1,
        per_device_train_batch_size=4,
        global_batch_size=8,
        **train,
    )


@pytest.mark.parametrize("method,arch", [("full", "llama"), ("lisa", "llama"), ("lisa", "mixtral")])
def test_fsdp_two_ranks_equal_one_process(method, arch, train_world, tmp_path, dist_env):  # noqa: F811
    model_dir = (
        None
        if arch == "llama"
        else build_mixtral(train_world["tokenizer"], tmp_path / "mixtral", 2)
    )
    extra = {"lisa_layers": 1, "lisa_interval": 2} if method == "lisa" else {}
    one = single_job(train_world, tmp_path / "one", method, model_dir, **extra)
    run(one, 1)
    two = fsdp_job(train_world, tmp_path / "two", method, model_dir, **extra)
    run(two, 2)
    a, b = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert len(a) == len(b) == 4
    print("losses", method, arch, a, b)
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < TOL, (a, b)
    assert a[0] != a[-1]  # it trained
    state = json.loads((tmp_path / "two" / "trainer_state.json").read_text())
    # global batch 8 = 2 ranks x 4 per device x 1 accumulation (one process: 1 x 4 x 2)
    layout = state["stateful_callbacks"]["BatchLayout"]["args"]
    assert {
        k: layout[k]
        for k in (
            "global_batch_size",
            "world_size",
            "per_device_train_batch_size",
            "gradient_accumulation_steps",
            "strategy",
        )
    } == {
        "global_batch_size": 8,
        "world_size": 2,
        "per_device_train_batch_size": 4,
        "gradient_accumulation_steps": 1,
        "strategy": "fsdp",
    }
    one_layout = json.loads((tmp_path / "one" / "trainer_state.json").read_text())[
        "stateful_callbacks"
    ]["BatchLayout"]["args"]
    assert one_layout["gradient_accumulation_steps"] == 2 and one_layout["sharded_parameters"] == 0
    # FSDP really sharded: every parameter is a DTensor and rank 0 holds about half the bytes
    assert layout["sharded_parameters"] > 0
    assert 0.4 < layout["parameter_bytes_rank0"] / one_layout["parameter_bytes_rank0"] < 0.6


def test_fsdp_sigkill_resume_equals_uninterrupted(train_world, tmp_path, dist_env):  # noqa: F811
    from transformers import AutoModelForCausalLM

    ref = fsdp_job(train_world, tmp_path / "ref", "full")
    run(ref, 2)
    job = fsdp_job(train_world, tmp_path / "killed", "full")
    job_file = tmp_path / "killed.json"
    job_file.write_text(job.to_json(), encoding="utf-8")
    # torchrun in its own process group; SIGKILL the whole group once checkpoint-2 is complete
    cmd = [sys.executable, "-m", "jaflow.train.launch", str(job_file), "2"]
    p = subprocess.Popen(
        cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    ckpts = Path(job.checkpoints)
    deadline = time.time() + 300
    while (
        time.time() < deadline
        and not (ckpts / "checkpoint-2").exists()
        or not resume.is_complete(ckpts / "checkpoint-2")
    ):
        assert p.poll() is None, "training ended before it could be killed"
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    assert not (Path(job.out_dir) / "trainer_state.json").exists()
    run(job, 2)
    a, b = losses(tmp_path / "ref"), losses(tmp_path / "killed")
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < TOL, (a, b)
    # the checkpoint FSDP wrote is one consolidated HF state dict that from_pretrained loads
    last = resume.last_complete_checkpoint(ckpts)
    assert (last / "model.safetensors").is_file()
    model = AutoModelForCausalLM.from_pretrained(last)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_deepspeed_zero3_two_ranks_equal_one_process(train_world, tmp_path, dist_env):  # noqa: F811
    """DeepSpeed ZeRO-3 runs on CPU here (its CPU accelerator, gloo): same curve as one process."""
    pytest.importorskip(
        "deepspeed", reason="deepspeed is an optional dependency (pip install deepspeed)"
    )
    one = single_job(train_world, tmp_path / "one", "full")
    run(one, 1)
    two = make_job(
        train_world,
        tmp_path / "ds",
        "full",
        max_steps=4,
        eval_steps=2,
        logging_steps=1,
        per_device_train_batch_size=4,
        global_batch_size=8,
        distributed={"strategy": "deepspeed", "zero_stage": 3},
    )
    run(two, 2)
    a, b = losses(tmp_path / "one"), losses(tmp_path / "ds")
    assert len(a) == len(b) == 4
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < TOL, (a, b)
    layout = json.loads((tmp_path / "ds" / "trainer_state.json").read_text())["stateful_callbacks"][
        "BatchLayout"
    ]
    one_layout = json.loads((tmp_path / "one" / "trainer_state.json").read_text())[
        "stateful_callbacks"
    ]["BatchLayout"]
    ratio = layout["args"]["parameter_bytes_rank0"] / one_layout["args"]["parameter_bytes_rank0"]
    assert 0.4 < ratio < 0.6  # ZeRO-3 partitions: rank 0 holds about half
    # the consolidated weights of the last checkpoint load as a plain HF model
    from transformers import AutoModelForCausalLM

    last = resume.last_complete_checkpoint(tmp_path / "ds" / "checkpoints")
    AutoModelForCausalLM.from_pretrained(last)
