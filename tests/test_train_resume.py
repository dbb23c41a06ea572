"""Resume after preemption, for every method: SIGKILL a run once it has a checkpoint (and leave
a half-written checkpoint behind), rerun; the final weights equal an uninterrupted run's, bit
for bit, on CPU. And checkpoints of another job (another parent by content, other settings) are
never resumed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from train_world import make_job, train_world  # noqa: F401  (fixture)
from transformers import TrainerCallback

from jaflow.train import resume

REPO = Path(__file__).resolve().parents[1]
STEPS, EVERY = 12, 4
# dropout on: the RNG state must be restored too; lisa switches layers mid-run (interval 3)
SETTINGS = dict(
    max_steps=STEPS,
    eval_steps=EVERY,
    logging_steps=EVERY,
    learning_rate=5e-3,
    lora_dropout=0.1,
    per_device_train_batch_size=4,
    lisa_layers=2,
    lisa_interval=3,
)


def start(job, tmp_path: Path, tag: str) -> subprocess.Popen:
    job_file = tmp_path / f"{tag}.json"
    job_file.write_text(job.to_json(), encoding="utf-8")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"))
    log = open(tmp_path / f"{tag}.log", "w")
    return subprocess.Popen(
        [sys.executable, "-m", "jaflow.train.recipes", str(job_file)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )


def evals(job) -> dict[int, float]:
    state = json.loads((Path(job.out_dir) / "trainer_state.json").read_text())
    return {e["step"]: e["eval_loss"] for e in state["log_history"] if "eval_loss" in e}


def final_weights(job) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    ckpt = Path(job.checkpoints) / f"checkpoint-{STEPS}"
    name = (
        "adapter_model.safetensors"
        if (ckpt / "adapter_model.safetensors").is_file()
        else "model.safetensors"
    )
    return load_file(ckpt / name)


@pytest.fixture(scope="module")
def uninterrupted(train_world, tmp_path_factory):  # noqa: F811
    """Reference runs, one per method, trained in this process without a break."""
    from jaflow.train.recipes import train

    root = tmp_path_factory.mktemp("uninterrupted")
    jobs = {}
    for method in ("qlora", "lora", "full", "lisa"):
        jobs[method] = make_job(train_world, root / method, method, **SETTINGS)
        train(jobs[method])
    return jobs


@pytest.mark.parametrize("method", ["qlora", "lora", "full", "lisa"])
def test_sigkilled_run_resumes_to_the_same_weights(method, uninterrupted, train_world, tmp_path):  # noqa: F811
    from jaflow.train.recipes import train

    ref = uninterrupted[method]
    cut = make_job(train_world, tmp_path / method, method, **SETTINGS)
    proc = start(cut, tmp_path, "killed")
    deadline = time.time() + 300
    while resume.last_complete_checkpoint(cut.checkpoints) is None:
        assert proc.poll() is None and time.time() < deadline, (
            tmp_path / "killed.log"
        ).read_text()[-3000:]
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    last = resume.last_complete_checkpoint(cut.checkpoints)
    killed_at = resume.checkpoint_step(last)
    assert killed_at < STEPS and not (Path(cut.out_dir) / "trainer_state.json").exists()
    # a checkpoint half-written when the job died: weights but no trainer_state.json
    half = Path(cut.checkpoints) / f"checkpoint-{killed_at + EVERY}"
    half.mkdir(exist_ok=True)
    (half / "model.safetensors").write_bytes(b"\0" * 10)
    (half / "trainer_state.json").unlink(missing_ok=True)

    trainer = train(cut)  # a fresh model from disk, resumed from `last`
    assert trainer.state.global_step == STEPS
    assert not half.exists() or resume.is_complete(half)  # removed (then maybe written anew)
    a, b = evals(ref), evals(cut)
    assert sorted(a) == sorted(b) == list(range(EVERY, STEPS + 1, EVERY))
    assert a == b, (a, b)
    wa, wb = final_weights(ref), final_weights(cut)
    assert wa.keys() == wb.keys() and wa
    differ = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not differ, (
        f"{len(differ)} tensors differ after resuming from step {killed_at}, e.g. {differ[0]}"
    )
    if method == "lisa":
        assert (Path(ref.out_dir) / "lisa_layers.csv").read_text() == (
            Path(cut.out_dir) / "lisa_layers.csv"
        ).read_text()


def test_checkpoints_of_other_settings_are_moved_aside(train_world, tmp_path):  # noqa: F811
    from jaflow.train.recipes import train

    job = make_job(
        train_world, tmp_path / "run", "full", max_steps=4, eval_steps=2, logging_steps=2
    )
    train(job)
    assert resume.checkpoint_step(resume.last_complete_checkpoint(job.checkpoints)) == 4
    assert resume.claim(job.checkpoints, job.fingerprint())  # same job: kept for resuming
    # logging-only settings do not change the trajectory, hence not the fingerprint
    assert (
        make_job(
            train_world,
            tmp_path / "run",
            "full",
            max_steps=4,
            eval_steps=2,
            logging_steps=1,
            report_to=[],
        ).fingerprint()
        == job.fingerprint()
    )
    changed = make_job(
        train_world,
        tmp_path / "run",
        "full",
        max_steps=6,
        eval_steps=2,
        logging_steps=2,
        learning_rate=1e-3,
    )
    assert changed.fingerprint() != job.fingerprint()
    trainer = train(changed)
    # trained from step 0 with the new settings, not resumed from the old checkpoint-4
    lrs = [e["learning_rate"] for e in trainer.state.log_history if "loss" in e]
    assert lrs == [1e-3, 1e-3, 1e-3]
    assert resume.checkpoint_step(resume.last_complete_checkpoint(changed.checkpoints)) == 6
    stale = resume.stale_dir(changed.checkpoints, job.fingerprint())
    assert (stale / "checkpoint-4").is_dir() and (
        stale / resume.FINGERPRINT
    ).read_text().strip() == job.fingerprint()


def test_changed_parent_weights_retrain_the_child_from_scratch(train_world, tmp_path):  # noqa: F811
    """A parent with other weights at the same path (e.g. a qlora parent retrained with another
    learning rate, then merged) is another parent: the child must not resume the old run."""
    from jaflow.io import WEIGHT_SUFFIXES, write_checksums
    from jaflow.tiny import build_model
    from jaflow.train.recipes import train

    parent = tmp_path / "models" / "parent"
    shutil.copytree(train_world["llama"], parent)
    write_checksums(parent, WEIGHT_SUFFIXES)  # as a model the workflow made
    kw = dict(max_steps=4, eval_steps=2, logging_steps=2)
    job = make_job(train_world, tmp_path / "child", "full", model_dir=parent, **kw)
    first = train(job)
    old_fingerprint = job.fingerprint()
    first_weights = final_weights_at(job, 4)
    first_evals = evals(job)

    shutil.rmtree(parent)
    build_model("llama", train_world["tokenizer"], parent, seed=1)  # same path, other weights
    write_checksums(parent, WEIGHT_SUFFIXES)
    again = make_job(train_world, tmp_path / "child", "full", model_dir=parent, **kw)
    assert again.model == job.model  # the same path: only the content differs
    assert again.fingerprint() != old_fingerprint
    second = train(again)
    assert second.state.global_step == 4 and first.state.global_step == 4
    stale = resume.stale_dir(again.checkpoints, old_fingerprint)
    assert (stale / "checkpoint-4").is_dir()  # the old run was moved aside, not resumed
    second_weights = final_weights_at(again, 4)
    assert any(not torch.equal(first_weights[k], second_weights[k]) for k in first_weights)
    assert evals(again) != first_evals
    # and it is a fresh run on the new parent: the same as training it in a new directory
    fresh = make_job(train_world, tmp_path / "fresh", "full", model_dir=parent, **kw)
    train(fresh)
    assert evals(fresh) == evals(again)


def final_weights_at(job, step: int) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(Path(job.checkpoints) / f"checkpoint-{step}" / "model.safetensors")


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

    kw = dict(
        max_steps=9,
        eval_steps=2,
        logging_steps=2,
        lisa_layers=2,
        lisa_interval=3,
        learning_rate=1e-3,
    )
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
    assert (tmp_path / "ref" / "lisa_layers.csv").read_text() == (
        tmp_path / "cut" / "lisa_layers.csv"
    ).read_text()
