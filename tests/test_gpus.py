"""claim_gpus: concurrent jobs on one workstation get distinct devices, or wait."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from jaflow.gpus import claim_gpus

REPO = Path(__file__).resolve().parents[1]
HOLDER = """
import os, sys, time
from jaflow.gpus import claim_gpus
with claim_gpus(int(sys.argv[1]), lock_dir=sys.argv[2], poll_s=0.1) as ids:
    print(os.environ["CUDA_VISIBLE_DEVICES"], time.time(), flush=True)
    time.sleep(float(sys.argv[3]))
print(time.time(), flush=True)
"""


def hold(n: int, lock_dir: Path, seconds: float, **env: str) -> subprocess.Popen:
    import os

    full = {
        k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID")
    }
    full.update(PYTHONPATH=str(REPO / "src"), **env)
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(n), str(lock_dir), str(seconds)],
        env=full,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_concurrent_jobs_get_distinct_devices_and_a_third_waits(tmp_path):
    first, second = hold(1, tmp_path, 2.0, JAFLOW_GPUS="2"), hold(1, tmp_path, 2.0, JAFLOW_GPUS="2")
    time.sleep(1.0)
    third = hold(1, tmp_path, 0.0, JAFLOW_GPUS="2")
    outs = [p.communicate(timeout=30)[0].split() for p in (first, second, third)]
    held = [(dev, float(start), float(end)) for dev, start, end in outs]
    assert {dev for dev, _, _ in held} <= {"0", "1"}
    # three jobs, two devices: two of them used the same device, one after the other
    for i, (dev_a, start_a, end_a) in enumerate(held):
        for dev_b, start_b, end_b in held[i + 1 :]:
            if dev_a == dev_b:
                assert end_a <= start_b + 0.05 or end_b <= start_a + 0.05, held


def test_pool_comes_from_cuda_visible_devices_and_slurm_binding_is_kept(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    with claim_gpus(2, lock_dir=tmp_path) as ids:
        assert ids == ["3", "5"]
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    with claim_gpus(1, lock_dir=tmp_path) as ids:
        assert ids == ["1"] and not list(tmp_path.glob("gpu1.lock"))


def gpu_rules() -> dict[str, int | str]:
    import yaml

    profile = yaml.safe_load((REPO / "profiles" / "local" / "config.yaml").read_text())
    return {rule: res["gpu"] for rule, res in profile["set-resources"].items() if "gpu" in res}


def rule_scripts() -> dict[str, Path]:
    import re

    out = {}
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        for m in re.finditer(r"^rule (\w+):\n(.*?)(?=^rule |\Z)", smk.read_text(), re.M | re.S):
            script = re.search(r"^\s+script:\s*\n\s+\"([^\"]+)\"", m.group(2), re.M)
            if script:
                out[m.group(1)] = (smk.parent / script.group(1)).resolve()
    return out


def test_every_gpu_job_of_the_local_profile_claims_its_devices():
    """Each rule the local profile gives a `gpu` resource runs a script whose work sits inside
    `with ... job_gpus(snakemake.resources)`."""
    import ast

    rules, scripts = gpu_rules(), rule_scripts()
    assert {
        "train",
        "select_checkpoint",
        "merge_moe",
        "jglue",
        "mtbench_answer",
        "mtbench_judge",
    } <= set(rules)
    unguarded = []
    for rule in rules:
        tree = ast.parse(scripts[rule].read_text())
        withs = [n for n in tree.body if isinstance(n, ast.With)]
        calls = [ast.unparse(i.context_expr) for w in withs for i in w.items]
        if "job_gpus(snakemake.resources)" not in calls or len(tree.body) - len(withs) > sum(
            isinstance(n, (ast.Import, ast.ImportFrom, ast.Expr)) for n in tree.body
        ):
            unguarded.append(rule)
    assert not unguarded, f"GPU jobs that do not claim their devices: {unguarded}"


JOB = """
import os, sys, time
from jaflow.gpus import job_gpus

class Resources(dict):  # what a job script sees as snakemake.resources
    pass

with job_gpus(Resources(gpu=int(sys.argv[1]), _cores=1)):
    print(os.environ["CUDA_VISIBLE_DEVICES"], time.time(), flush=True)
    time.sleep(float(sys.argv[2]))
print(time.time(), flush=True)
"""


def test_gpu_jobs_on_a_fake_device_list_get_distinct_devices(tmp_path):
    """Three one-GPU jobs on a workstation whose devices are 4 and 6: two run at once on
    different devices, the third waits for one to be free; a CPU job claims nothing."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "SLURM_JOB_ID"}
    env.update(PYTHONPATH=str(REPO / "src"), CUDA_VISIBLE_DEVICES="4,6")

    def job(n: int, seconds: float) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", JOB, str(n), str(seconds)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            text=True,
        )

    first, second = job(1, 2.0), job(1, 2.0)
    time.sleep(1.0)
    third = job(1, 0.0)
    held = [
        (d, float(s), float(e))
        for d, s, e in (p.communicate(timeout=30)[0].split() for p in (first, second, third))
    ]
    assert {held[0][0], held[1][0]} == {"4", "6"}  # the first two at once, on different devices
    assert (
        held[2][0] in ("4", "6") and held[2][1] >= min(held[0][2], held[1][2]) - 0.05
    )  # the third waited
    assert sorted(p.name for p in (tmp_path / ".snakemake" / "gpu_locks").iterdir()) == [
        "gpu4.lock",
        "gpu6.lock",
    ]
    cpu = subprocess.run(
        [sys.executable, "-c", JOB, "0", "0"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert cpu.stdout.split()[0] == "4,6"  # no gpu resource: the environment is left as it is
