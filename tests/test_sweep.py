"""Sweeps: expansion of a template model into one typed, path-safe model per point."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from jaflow.config import load_experiment, prepare_config
from jaflow.config.sweeps import all_sweep_points, format_value
from jaflow.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def base_config(sweep: dict) -> dict:
    return {
        "datasets": {
            "mix": {"sources": [{"name": "a", "path": "data/a.jsonl"}]},
            "other": {"sources": [{"name": "b", "path": "data/b.jsonl"}]},
        },
        "models": {
            "base": {"pretrained": "tiny:llama"},
            "tmpl": {"from": "base", "method": "lora", "dataset": "mix", "train": {"lora_r": 8}},
            "moe": {"base": "base", "experts": ["base"], "gate_mode": "random"},
        },
        "sweeps": {"s": sweep},
        "jglue": {"data_dir": "tiny", "runs": [{"suite": "jglue4", "models": ["base", "s"]}]},
        "mtbench": {"questions": "tiny", "models": ["s"]},
        "reports": {"r": {"models": ["s"]}, "all": {}},
    }


def test_grid_expands_to_typed_models_with_readable_names():
    config = prepare_config(
        base_config(
            {
                "model": "tmpl",
                "grid": {"train.lora_r": [4, 16], "train.learning_rate": [0.0001, 0.002]},
            }
        )
    )
    names = [
        "s~lora_r=4~learning_rate=0.0001",
        "s~lora_r=4~learning_rate=0.002",
        "s~lora_r=16~learning_rate=0.0001",
        "s~lora_r=16~learning_rate=0.002",
    ]
    assert [n for n in config["models"] if n.startswith("s~")] == names
    assert "tmpl" not in config["models"]
    point = config["models"]["s~lora_r=16~learning_rate=0.0001"]
    assert point["train"]["lora_r"] == 16 and isinstance(point["train"]["lora_r"], int)
    assert point["train"]["learning_rate"] == 0.0001
    assert point["train"]["lora_alpha"] == 16  # the template's (default-filled) values are kept
    # evaluations and reports that name the sweep mean all of its points
    assert config["jglue"]["runs"][0]["models"] == ["base", *names]
    assert config["mtbench"]["models"] == names
    assert config["reports"]["r"]["models"] == names
    graph = load_experiment(config, ["sweep.yaml"]).graph
    assert graph.model_path(names[0]) == f"results/sweep/models/{names[0]}"
    assert graph[names[0]].parent == "base"


def test_points_follow_the_grid_and_clashing_labels_use_the_full_key():
    config = prepare_config(
        base_config(
            {
                "model": "tmpl",
                "grid": {"train.lora_r": [4]},
                "points": [
                    {"dataset": "other", "train.lora_r": 2},
                    {"train.lisa_layers": 3, "train.lisa_interval": 7},
                ],
            }
        )
    )
    assert [n for n in config["models"] if n.startswith("s~")] == [
        "s~lora_r=4",
        "s~dataset=other~lora_r=2",
        "s~lisa_layers=3~lisa_interval=7",
    ]
    assert config["models"]["s~dataset=other~lora_r=2"]["dataset"] == "other"
    points = all_sweep_points(config)["s"]
    assert points[2].params == {"train.lisa_layers": 3, "train.lisa_interval": 7}


def test_merge_template_sweeps_gate_mode():
    cfg = base_config({"model": "moe", "grid": {"gate_mode": ["random", "cheap_embed"]}})
    cfg["jglue"]["runs"][0]["models"] = ["s"]
    cfg["mtbench"]["models"] = []
    config = prepare_config(cfg)
    assert config["models"]["s~gate_mode=cheap_embed"]["gate_mode"] == "cheap_embed"
    assert "moe" not in config["models"]


def test_format_value_is_path_safe():
    assert format_value(0.0001) == "0.0001"
    assert format_value(True) == "true"
    assert format_value(["a/b", "c d"]) == "a-b+c-d"
    assert format_value({"k": 1}) == "k-1"


@pytest.mark.parametrize(
    ("sweep", "message"),
    [
        (
            {"model": "tmpl", "grid": {"train.lora_rr": [4]}},
            r"sweeps\.s point 's~lora_rr=4'.*lora_rr",
        ),
        (
            {"model": "tmpl", "grid": {"train.lora_r": ["8"]}},
            r"lora_r.*not of type 'integer'.*--configfile",
        ),
        (
            {"model": "tmpl", "points": [{"train.lora_r": 4}, {"train.lora_r": 4}]},
            r"points 0 and 1 both make",
        ),
        (
            {"model": "nope", "grid": {"train.lora_r": [4]}},
            r"sweeps\.s\.model: unknown model 'nope'",
        ),
        ({"model": "tmpl"}, r"sweeps\.s: a sweep needs a grid or points"),
        (
            {"model": "tmpl", "grid": {"dataset": ["a/b", "a b"]}},
            r"both make the model 's~dataset=a-b'",
        ),
    ],
)
def test_bad_sweeps_name_the_field(sweep, message):
    with pytest.raises(ConfigError, match=message):
        prepare_config(base_config(sweep))


def test_a_model_built_on_the_template_is_an_error():
    cfg = base_config({"model": "tmpl", "grid": {"train.lora_r": [4]}})
    cfg["models"]["moe"]["experts"] = ["tmpl"]
    with pytest.raises(ConfigError, match=r"models\.moe: builds on 'tmpl'"):
        prepare_config(cfg)


def test_expansion_is_idempotent():
    config = prepare_config(base_config({"model": "tmpl", "grid": {"train.lora_r": [4, 8]}}))
    again = prepare_config(copy.deepcopy(config))
    assert list(again["models"]) == list(config["models"])
    assert all(
        again["models"][m]["train"] == config["models"][m]["train"]
        for m in ("s~lora_r=4", "s~lora_r=8")
    )
    assert again["jglue"]["runs"] == config["jglue"]["runs"]


def dry_run_jobs(*args: str, cwd: Path = REPO) -> dict[str, list[str]]:
    """rule -> the wildcard strings of its jobs, from `snakemake -n` (dry run)."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    out = subprocess.run(
        [SNAKEMAKE, "-n", "--snakefile", str(REPO / "Snakefile"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    jobs: dict[str, list[str]] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", out.stdout):
        m = re.match(r"(?:local)?rule (\w+):", block.strip())
        if m:
            wc = re.search(r"wildcards: (.*)", block)
            jobs.setdefault(m.group(1), []).append(wc.group(1) if wc else "")
    return jobs


def test_shipped_sweep_dry_run_lists_one_training_and_evaluation_per_point(tmp_path):
    jobs = dry_run_jobs(
        "--configfile", str(REPO / "config/experiments/sweep_lora.yaml"), cwd=tmp_path
    )
    spec = yaml.safe_load((REPO / "config/experiments/sweep_lora.yaml").read_text())
    points = [p.name for p in all_sweep_points(spec)["lora"]]
    assert len(points) == 4
    assert sorted(jobs["train"]) == sorted(f"trained={p}" for p in points)
    assert sorted(jobs["select_checkpoint"]) == sorted(f"trained={p}" for p in points)
    assert sorted(jobs["jglue"]) == sorted(f"suite=jglue4, model={p}" for p in points)
    assert jobs["report"] == ["report=sweep_lora"]
