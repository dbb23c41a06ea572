"""What makes a DAG's results trustworthy: checks when the DAG is built (naming the key), one
results folder per experiment, recovery after an interrupted run."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO_ROOT, snakemake, snakemake_env

EXPERIMENTS = REPO_ROOT / "config" / "experiments"


def dry_run_error(run_workflow, config) -> str:
    proc = run_workflow(config=config, default_config=False, args=["-n"], check=False)
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert not (proc.workdir / "results").exists()
    return proc.stdout + proc.stderr


def test_a_real_experiment_without_jglue_data_stops_at_dag_build(run_workflow):
    out = dry_run_error(
        run_workflow,
        {
            "models": {"m": {"pretrained": "org/model"}},
            "jglue": {"runs": [{"suite": "jglue4", "models": ["m"]}]},
        },
    )
    assert "jglue.data_dir: not set, and jglue.runs evaluate models" in out


def test_a_real_experiment_without_mtbench_questions_stops_at_dag_build(run_workflow):
    out = dry_run_error(
        run_workflow, {"models": {"m": {"pretrained": "org/model"}}, "mtbench": {"models": ["m"]}}
    )
    assert "mtbench.questions: not set" in out


@pytest.mark.parametrize("ref", ["./models/my_llama", "/nonexistent/llama-7b"])
def test_a_missing_model_path_stops_at_dag_build(run_workflow, ref):
    out = dry_run_error(run_workflow, {"models": {"base": {"pretrained": ref}}})
    assert f"models.base.pretrained: '{ref}' is a local path" in out


@pytest.mark.workflow
def test_a_missing_model_path_is_an_error_even_where_results_exist(finished_demo, tmp_path):
    """The stale case: a checkout with results, then `pretrained:` pointed at nothing. Before,
    only the report reran and every model card named the missing path as its base model."""
    proc = snakemake(
        finished_demo,
        config={"models": {"tiny_llama": {"pretrained": "/nonexistent/llama"}}},
        args=["-n"],
        check=False,
    )
    assert proc.returncode != 0
    assert (
        "models.tiny_llama.pretrained: '/nonexistent/llama' is a local path"
        in proc.stdout + proc.stderr
    )


def output_roots(stdout: str) -> set[str]:
    """results/<experiment> of every output a dry run lists."""
    paths = [p for line in re.findall(r"^\s+output: (.*)$", stdout, re.M) for p in line.split(", ")]
    return {"/".join(Path(p).parts[:2]) for p in paths if p.startswith("results/")}


def test_experiments_write_to_disjoint_result_folders(tmp_path):
    runs = {
        "demo": [],
        "sweep_lora": [EXPERIMENTS / "sweep_lora.yaml"],
        "openorca_stx": [EXPERIMENTS / "openorca_stx.yaml"],
    }
    roots = {}
    for name, files in runs.items():
        proc = snakemake(
            tmp_path / "work",
            configfiles=files,
            default_config=not files,
            args=["-n", "--forceall"],
        )
        roots[name] = output_roots(proc.stdout)
    assert roots == {name: {f"results/{name}"} for name in runs}


@pytest.mark.workflow
def test_an_interrupted_run_recovers_with_the_plain_command(tmp_path):
    """Snakemake killed while a job runs, the job finishing after it: the output exists and is
    marked incomplete. A plain rerun must redo it (the workflow's default profile sets
    rerun-incomplete), not stop with IncompleteFilesException."""
    work = tmp_path / "work"
    work.mkdir()
    target = "results/demo/tiny/data/instructions.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        target,
        "-s",
        str(REPO_ROOT / "Snakefile"),
        "--cores",
        "1",
    ]
    proc = subprocess.Popen(
        cmd, cwd=work, env=snakemake_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    log = work / "logs/demo/tiny/instructions.log"
    deadline = time.monotonic() + 120
    while not log.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert log.exists(), "the job never started"
    os.kill(proc.pid, signal.SIGKILL)  # snakemake dies; its job runs on and writes the output
    proc.wait()
    deadline = time.monotonic() + 120
    while not (work / target).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (work / target).exists()
    # a Ctrl-C exits through Snakemake's handler, which releases its locks; SIGKILL does not
    shutil.rmtree(work / ".snakemake" / "locks")
    without_profile = subprocess.run(
        [*cmd, "--workflow-profile", "none", "-n"],
        cwd=work,
        env=snakemake_env(),
        capture_output=True,
        text=True,
    )
    assert (
        "IncompleteFilesException" in without_profile.stdout + without_profile.stderr
    )  # the state is real
    before = (work / target).stat().st_mtime_ns
    again = subprocess.run(cmd, cwd=work, env=snakemake_env(), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (work / target).stat().st_mtime_ns > before  # the incomplete output was made again


def test_a_bad_data_row_fails_once_with_one_line_naming_file_and_line(run_workflow, tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text(
        '{"instruction": "a", "output": "b"}\n{"instruction": broken\n', encoding="utf-8"
    )
    config = {
        "datasets": {
            "d": {"sources": [{"name": "s", "path": str(data)}], "validation": {"size": 0}}
        }
    }
    proc = run_workflow(
        "results/test/datasets/d/manifest.json", config=config, default_config=False, check=False
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    line = f"jaflow: {data}:2: invalid JSON"
    assert out.count(line) == 1, out[-3000:]  # not retried, not buried in tracebacks
    assert "Traceback" not in out


def copy_of(demo: Path, dest: Path) -> Path:
    """A copy of the finished demo (mtimes and Snakemake's records kept) to change and rerun."""
    shutil.copytree(demo, dest, symlinks=True, ignore=shutil.ignore_patterns("locks"))
    return dest


def safetensors_digests(model_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(model_dir.glob("*.safetensors"))}


@pytest.mark.workflow
def test_a_retrained_parent_retrains_its_child_from_scratch(finished_demo, tmp_path):
    """Seed 004's shape: merge -> LISA. Before, changing the merged-in QLoRA run resumed the LISA
    child from its old final checkpoint, leaving its weights byte-identical."""
    work = copy_of(finished_demo, tmp_path / "demo")
    child = work / "results/demo/models/tiny_moe_lisa"
    before = safetensors_digests(child)
    history_before = (work / "results/demo/train/tiny_moe_lisa/log_history.csv").read_text()
    changed = {"models": {"tiny_qlora": {"train": {"learning_rate": 0.003}}}}
    snakemake(work, "results/demo/models/tiny_moe_lisa", config=changed)
    assert safetensors_digests(child) != before
    assert (work / "results/demo/train/tiny_moe_lisa/log_history.csv").read_text() != history_before


@pytest.mark.workflow
def test_a_retrained_judge_judges_again(finished_demo, tmp_path):
    """Before, the judge cache was keyed by the judge's name: a retrained judge sent 0 calls and
    served the old judge's ratings."""
    work = copy_of(finished_demo, tmp_path / "demo")
    cache = work / "results/cache/mtbench_judge/tiny_judge.jsonl"
    lines_before = len(cache.read_text().splitlines())
    changed = {"models": {"tiny_judge": {"train": {"seed": 7}}}}
    scores = "results/demo/mtbench/japanese_mt_bench/scores/tiny_judge/tiny_llama.csv"
    snakemake(work, scores, config=changed)
    assert len(cache.read_text().splitlines()) > lines_before  # new calls, not old answers


def weights_config(model_dir: Path, md5: str) -> dict:
    return {
        "models": {
            "base": {"pretrained": str(model_dir), "md5": {"model.safetensors": md5}},
            "tuned": {"from": "base", "method": "lora", "dataset": "d"},
        },
        "datasets": {"d": {"sources": [{"name": "s", "path": "tiny:instructions"}]}},
    }


def test_a_base_with_published_checksums_is_checked_before_any_job_loads_it(run_workflow, tmp_path):
    import hashlib

    model = tmp_path / "base_model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"the published weights")
    good = hashlib.md5(b"the published weights").hexdigest()

    plan = run_workflow(config=weights_config(model, good), default_config=False, args=["-n"])
    assert "rule verify_weights:" in plan.stdout
    train = plan.stdout.index("rule train:")
    assert plan.stdout.index("rule verify_weights:") < train, "training must wait for the check"

    check = "results/test/weights/base.json"
    (model / "model.safetensors").write_bytes(b"other weights under the same name")
    proc = run_workflow(
        check, config=weights_config(model, good), default_config=False, check=False
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"models.base.md5: {model}/model.safetensors" in out, out[-3000:]
    assert f"the config expects {good}" in out
    assert not (proc.workdir / check).exists()

    (model / "model.safetensors").write_bytes(b"the published weights")
    run_workflow(check, config=weights_config(model, good), default_config=False)
    record = json.loads((tmp_path / "work" / check).read_text())
    assert record["files"] == {"model.safetensors": {"md5": good}}
