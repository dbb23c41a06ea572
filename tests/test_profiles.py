"""The slurm and local profiles: lookup from the repo root, per-rule resources, the GPU cap."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from snakemake.profiles import ProfileConfigFileParser

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
GPU_RULES = ["train", "select_checkpoint", "merge_moe", "jglue", "mtbench_answer", "mtbench_judge"]
SITE_VARS = [
    "JAFLOW_SLURM_SITE",
    "JAFLOW_SLURM_PARTITION",
    "JAFLOW_SLURM_GPU_PARTITION",
    "JAFLOW_SLURM_ACCOUNT",
    "JAFLOW_SLURM_GPU_MODEL",
    "JAFLOW_SLURM_GPU_FLAG",
    "JAFLOW_SLURM_JUDGE_GPUS",
    "JAFLOW_GPUS",
]


def parse_profile(name: str, monkeypatch, **env: str) -> dict:
    """The profile as Snakemake reads it: key -> value, resources as 'rule:name=value' strings."""
    monkeypatch.chdir("/")  # no slurm/site.yaml of the developer's in the way
    for var in SITE_VARS:
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    with open(REPO / "profiles" / name / "config.yaml") as f:
        return dict(ProfileConfigFileParser().parse(f))


def rule_resources(profile: dict, rule: str) -> dict[str, str]:
    items = [
        s.split(":", 1)[1] for s in profile.get("set-resources", []) if s.startswith(f"{rule}:")
    ]
    return dict(s.split("=", 1) for s in items)


def test_slurm_profile_is_found_as_typed_from_the_repo_root(tmp_path):
    assert (REPO / "slurm").resolve() == (REPO / "profiles" / "slurm").resolve()
    env = {k: v for k, v in os.environ.items() if k not in SITE_VARS}
    env.update(
        PYTHONPATH=str(REPO / "src"), JAFLOW_SLURM_PARTITION="all", JAFLOW_SLURM_GPU_MODEL="h100"
    )
    # typed in the repo root; the dry run works in tmp_path so that a finished `make demo`
    # there ("Nothing to be done") never changes what it shows
    out = subprocess.run(
        [SNAKEMAKE, "--profile", "slurm", "-n", "--directory", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    log = out.stdout + out.stderr
    assert "Using profiles slurm and workflow specific profile profiles/default for setting" in log
    jobs = re.findall(r"^rule (\w+):.*?^\s+resources: (.*?)$", log, re.M | re.S)
    assert {r for r, _ in jobs} >= {"train", "jglue", "sample_dataset", "report"}
    for rule, resources in jobs:
        assert "slurm_partition=all" in resources, (rule, resources)  # a string, not Python's all()
        if rule == "train":  # its GPUs and nodes are the rule's own (train.distributed)
            assert "gpu=1" in resources and "nodes=1" in resources and "gpu_model=h100" in resources
        elif rule in GPU_RULES:
            assert "gpu=1, gpu_model=h100" in resources, (rule, resources)
        else:
            assert "gpu" not in resources, (rule, resources)


def test_slurm_profile_site_settings_from_the_environment(monkeypatch):
    plain = parse_profile("slurm", monkeypatch)
    assert plain["executor"] == "slurm" and plain["slurm-requeue"] == "True"
    assert not any(
        "slurm_partition" in r or "slurm_account" in r for r in plain["default-resources"]
    )
    assert rule_resources(plain, "train") == {
        "cpus_per_task": "8",
        "mem_mb": "64000",
        "runtime": "'24h'",
    }
    assert rule_resources(plain, "sample_dataset") == {"mem_mb": "16000", "runtime": "120"}

    site = parse_profile(
        "slurm",
        monkeypatch,
        JAFLOW_SLURM_PARTITION="cpu",
        JAFLOW_SLURM_ACCOUNT="lab",
        JAFLOW_SLURM_GPU_PARTITION="gpu",
        JAFLOW_SLURM_GPU_MODEL="a100",
        JAFLOW_SLURM_GPU_FLAG="gres",
        JAFLOW_SLURM_JUDGE_GPUS="0",
    )
    assert "slurm_partition='cpu'" in site["default-resources"]
    assert "slurm_account='lab'" in site["default-resources"]
    for rule in GPU_RULES[:-1]:
        res = rule_resources(site, rule)
        # train: --gres counts per node, so one GPU, and the rule's own count switched off
        assert res["gres"] == "'gpu:a100:1'" and res.get("gpu", "0") == "0", rule
        assert res["slurm_partition"] == "'gpu'"
    judge = rule_resources(site, "mtbench_judge")  # an API judge: no GPU, the CPU partition
    assert "gres" not in judge and "gpu" not in judge and "slurm_partition" not in judge


def test_slurm_site_file_sets_partition_and_per_rule_resources(monkeypatch, tmp_path):
    site = tmp_path / "site.yaml"
    site.write_text((REPO / "profiles/slurm/site.example.yaml").read_text())
    profile = parse_profile(
        "slurm", monkeypatch, JAFLOW_SLURM_SITE=str(site), JAFLOW_SLURM_ACCOUNT="other"
    )
    assert "slurm_partition='cpu'" in profile["default-resources"]
    assert "slurm_account='other'" in profile["default-resources"]  # the variable wins
    train = rule_resources(profile, "train")
    assert (
        train["runtime"] == "'48h'"
        and train["mem_mb"] == "128000"
        and train["cpus_per_task"] == "8"
    )
    assert (
        "gpu" not in train
        and train["gpu_model"] == "'a100'"
        and train["slurm_partition"] == "'gpu'"
    )
    assert rule_resources(profile, "report") == {"runtime": "10"}
    with pytest.raises(Exception, match="no such file"):
        parse_profile("slurm", monkeypatch, JAFLOW_SLURM_SITE=str(tmp_path / "missing.yaml"))


def test_local_profile_counts_gpus(monkeypatch):
    assert parse_profile("local", monkeypatch)["resources"] == ["gpu=1"]
    assert parse_profile("local", monkeypatch, JAFLOW_GPUS="4")["resources"] == ["gpu=4"]
    assert all(
        rule_resources(parse_profile("local", monkeypatch), r) == {"gpu": "1"} for r in GPU_RULES
    )


PROBE = """
rule all:
    input: expand("done/{i}.txt", i=[1, 2])

rule train:
    output: "done/{i}.txt"
    log: "logs/{i}.log"
    shell: "python -c 'import time; print(time.time())' > {output}; sleep 3; python -c 'import time; print(time.time())' >> {output}"
"""


def intervals(work: Path) -> list[tuple[float, float]]:
    return [tuple(map(float, (work / f"done/{i}.txt").read_text().split())) for i in (1, 2)]


# 8 cores, so only the GPU count (not the 4 threads of each train job) can keep them apart.
@pytest.mark.parametrize(("gpus", "overlap"), [(None, False), ("2", True)])
def test_local_profile_never_runs_two_gpu_jobs_on_one_gpu(tmp_path, gpus, overlap):
    (tmp_path / "Snakefile").write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k not in SITE_VARS}
    if gpus:
        env["JAFLOW_GPUS"] = gpus
    out = subprocess.run(
        [SNAKEMAKE, "--profile", str(REPO / "profiles" / "local"), "--cores", "8"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (s1, e1), (s2, e2) = intervals(tmp_path)
    assert (s1 < e2 and s2 < e1) == overlap
