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

    full = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID")}
    full.update(PYTHONPATH=str(REPO / "src"), **env)
    return subprocess.Popen([sys.executable, "-c", HOLDER, str(n), str(lock_dir), str(seconds)],
                            env=full, stdout=subprocess.PIPE, text=True)


def test_concurrent_jobs_get_distinct_devices_and_a_third_waits(tmp_path):
    first, second = hold(1, tmp_path, 2.0, JAFLOW_GPUS="2"), hold(1, tmp_path, 2.0, JAFLOW_GPUS="2")
    time.sleep(1.0)
    third = hold(1, tmp_path, 0.0, JAFLOW_GPUS="2")
    outs = [p.communicate(timeout=30)[0].split() for p in (first, second, third)]
    held = [(dev, float(start), float(end)) for dev, start, end in outs]
    assert {dev for dev, _, _ in held} <= {"0", "1"}
    # three jobs, two devices: two of them used the same device, one after the other
    for i, (dev_a, start_a, end_a) in enumerate(held):
        for dev_b, start_b, end_b in held[i + 1:]:
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
