"""Resume after preemption: SIGKILL a run once it has checkpoints, leave a half-written
checkpoint behind, rerun; the final metrics equal an uninterrupted run's on CPU."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from train_world import make_job, train_world  # noqa: F401  (fixture)
from transformers import TrainerCallback

from jaflow.train import resume

REPO = Path(__file__).resolve().parents[1]


def start(job, tmp_path: Path, tag: str) -> subprocess.Popen:
    job_file = tmp_path / f"{tag}.json"
    job_file.write_text(job.to_json(), encoding="utf-8")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"))
    log = open(tmp_path / f"{tag}.log", "w")
    return subprocess.Popen([sys.executable, "-m", "jaflow.train.recipes", str(job_file)],
                            stdout=log, stderr=subprocess.STDOUT, env=env)


def evals(job) -> dict[int, float]:
    state = json.loads((Path(job.out_dir) / "trainer_state.json").read_text())
    return {e["step"]: e["eval_loss"] for e in state["log_history"] if "eval_loss" in e}


def test_killed_run_resumes_to_the_same_result(train_world, tmp_path):  # noqa: F811
    # lora with dropout: the RNG state must be restored too for the numbers to match
    kw = dict(max_steps=24, eval_steps=4, logging_steps=4, learning_rate=5e-3, lora_dropout=0.1,
              per_device_train_batch_size=4)
    ref = make_job(train_world, tmp_path / "ref", "lora", **kw)
    cut = make_job(train_world, tmp_path / "cut", "lora", **kw)
    ref_proc = start(ref, tmp_path, "ref")

    proc = start(cut, tmp_path, "cut1")
    deadline = time.time() + 300
    while resume.last_complete_checkpoint(cut.checkpoints) is None:
        assert proc.poll() is None and time.time() < deadline, "run ended before its first checkpoint"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    last = resume.last_complete_checkpoint(cut.checkpoints)
    killed_at = resume.checkpoint_step(last)
    assert killed_at < 24 and not (Path(cut.out_dir) / "trainer_state.json").exists()
    # a checkpoint half-written when the job died: weights but no trainer_state.json
    half = Path(cut.checkpoints) / f"checkpoint-{killed_at + 4}"
    half.mkdir(exist_ok=True)
    (half / "adapter_model.safetensors").write_bytes(b"\0" * 10)
    (half / "trainer_state.json").unlink(missing_ok=True)

    proc = start(cut, tmp_path, "cut2")
    assert proc.wait(timeout=300) == 0, (tmp_path / "cut2.log").read_text()[-3000:]
    assert ref_proc.wait(timeout=300) == 0, (tmp_path / "ref.log").read_text()[-3000:]
    log2 = (tmp_path / "cut2.log").read_text()
    assert f"resuming from {last}" in log2 and "removing incomplete checkpoint" in log2

    a, b = evals(ref), evals(cut)
    assert sorted(a) == sorted(b) == list(range(4, 28, 4))
    for step in a:
        assert abs(a[step] - b[step]) <= 1e-6, (step, a[step], b[step])
    assert a[24] < a[4]


def test_checkpoints_of_other_settings_are_not_resumed(train_world, tmp_path):  # noqa: F811
    from jaflow.train.recipes import train

    job = make_job(train_world, tmp_path / "run", "full", max_steps=4, eval_steps=2, logging_steps=2)
    train(job)
    assert resume.checkpoint_step(resume.last_complete_checkpoint(job.checkpoints)) == 4
    assert resume.claim(job.checkpoints, job.fingerprint())  # same job: kept for resuming
    changed = make_job(train_world, tmp_path / "run", "full", max_steps=6, eval_steps=2, logging_steps=2,
                       learning_rate=1e-3)
    assert changed.fingerprint() != job.fingerprint()
    trainer = train(changed)
    # trained from step 0 with the new settings, not resumed from the old checkpoint-4
    lrs = [e["learning_rate"] for e in trainer.state.log_history if "loss" in e]
    assert lrs == [1e-3, 1e-3, 1e-3]
    assert [p.name for p in resume.complete_checkpoints(changed.checkpoints)] == [
        "checkpoint-2", "checkpoint-4", "checkpoint-6"]


class Preempted(Exception):
    pass


class StopAfterSave(TrainerCallback):
    """Dies right after the checkpoint of `step` is written, like a preempted job."""

    def __init__(self, step: int):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise Preempted


def test_lisa_resumes_mid_period_to_the_same_result(train_world, tmp_path):  # noqa: F811
    from jaflow.train.recipes import train

    kw = dict(max_steps=9, eval_steps=2, logging_steps=2, lisa_layers=2, lisa_interval=3, learning_rate=1e-3)
    ref = make_job(train_world, tmp_path / "ref", "lisa", **kw)
    cut = make_job(train_world, tmp_path / "cut", "lisa", **kw)
    train(ref)
    with pytest.raises(Preempted):
        train(cut, callbacks=[StopAfterSave(4)])  # step 4 is inside the period of steps 3-5
    train(cut)
    a, b = evals(ref), evals(cut)
    assert sorted(a) == sorted(b) == [2, 4, 6, 8, 9]
    for step in a:
        assert abs(a[step] - b[step]) <= 1e-6, (step, a[step], b[step])
    assert (tmp_path / "ref" / "lisa_layers.csv").read_text() == (tmp_path / "cut" / "lisa_layers.csv").read_text()
