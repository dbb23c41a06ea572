"""Sweeps and reruns through real snakemake on the tiny world.

- a 2x2 LoRA sweep end to end: one trained, selected and evaluated model per point and one
  summary table of four rows;
- a finished demo reruns nothing; changing one model's parameter reruns only its jobs and the
  jobs downstream of it.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
import yaml
from conftest import snakemake

from jaflow.config.sweeps import all_sweep_points

pytestmark = pytest.mark.workflow

REPO = Path(__file__).resolve().parents[1]


def dry_run(workdir: Path, *, config: dict | None = None, configfiles=()) -> dict[str, list[str]]:
    """rule -> wildcards of each job a dry run would execute (empty dict: nothing to do)."""
    proc = snakemake(
        workdir,
        "-n",
        config=config,
        configfiles=configfiles,
        default_config=config is None and not configfiles,
        args=["--quiet", "progress"],
    )
    log = proc.stdout + proc.stderr
    jobs: dict[str, list[str]] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", log):
        m = re.match(r"(?:local)?rule (\w+):", block.strip())
        if m and m.group(1) != "all":
            wc = re.search(r"wildcards: (.*)", block)
            jobs.setdefault(m.group(1), []).append(wc.group(1) if wc else "")
    return jobs


def small_sweep() -> dict:
    config = yaml.safe_load((REPO / "config/experiments/sweep_lora.yaml").read_text())
    config["models"]["lora_template"]["train"].update(max_steps=4, eval_steps=2, logging_steps=1)
    config["jglue"]["limit"] = 4
    return config


def test_two_by_two_sweep_runs_end_to_end_into_one_summary_table(tmp_path):
    config = small_sweep()
    # the names as the run sees them: conftest writes the config with sorted keys, so the grid's
    # keys (and each name's parts) come in sorted order
    points = [p.name for p in all_sweep_points(yaml.safe_load(yaml.safe_dump(config)))["lora"]]
    work = tmp_path / "sweep"
    snakemake(work, config=config, default_config=False)
    for point in points:
        assert (work / "results/test/models" / point / "selection.json").exists()
        assert (work / "results/test/jglue/jglue4" / point / "scores.csv").exists()
    with open(work / "results/test/reports/sweep_lora/tables/summary.csv", encoding="utf-8") as f:
        rows = list(csv.reader(f))[1:]
    assert len(rows) == 4
    assert sorted(r[0] for r in rows) == sorted(points)
    plots = sorted(
        p.name for p in (work / "results/test/reports/sweep_lora/plots").glob("sweep_*.png")
    )
    assert plots, "no sweep plots"
    assert dry_run(work, config=config) == {}  # and the finished sweep reruns nothing


def test_finished_demo_reruns_no_job(finished_demo):
    proc = snakemake(finished_demo)
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_changing_one_training_parameter_reruns_only_that_models_jobs(finished_demo, tmp_path):
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["models"]["tiny_moe_lisa"]["train"]["learning_rate"] = 0.0003
    # Keys stay in the demo's order: Snakemake compares dict params order-sensitively, so a
    # config with the same values in another key order would rerun every job.
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    jobs = dry_run(finished_demo, configfiles=[changed])
    assert jobs == {
        "train": ["trained=tiny_moe_lisa"],
        "select_checkpoint": ["trained=tiny_moe_lisa"],
        "report": ["report=demo"],
    }, jobs


def merge_config(tiny_model, tiny_tokenizer_dir, root: Path, gate_mode: str) -> dict:
    from jaflow.tiny import build_model

    demo = yaml.safe_load((REPO / "config/config.yaml").read_text())
    expert = root / "expert"
    if not expert.exists():
        build_model("llama", tiny_tokenizer_dir, expert, seed=1)
    base = {"pretrained": str(tiny_model("llama"))}
    return {
        "datasets": {"mix": dict(demo["datasets"]["demo_mix"])},
        "models": {
            "base": base,
            "expert": {"pretrained": str(expert)},
            "moe_a": {
                "base": "base",
                "experts": ["base", "expert"],
                "gate_mode": "random",
                "dtype": "float32",
            },
            "moe_b": {
                "base": "base",
                "experts": ["base", "expert"],
                "gate_mode": gate_mode,
                "dtype": "float32",
            },
        },
    }


def test_changing_one_merge_parameter_reruns_only_that_merge(
    tmp_path, tiny_model, tiny_tokenizer_dir
):
    """The same selectivity on the stages built today: sampling and two merges, one changed."""
    work = tmp_path / "work"
    before = merge_config(tiny_model, tiny_tokenizer_dir, tmp_path, "random")
    snakemake(work, config=before, default_config=False)
    assert dry_run(work, config=before) == {}
    after = merge_config(tiny_model, tiny_tokenizer_dir, tmp_path, "uniform_random")
    assert dry_run(work, config=after) == {"merge_moe": ["merged=moe_b"]}
