"""Run a training job in one process, or re-launch it on several through torchrun.

The number of processes comes from the job's resources (`gpu`/`gpus`, else `tasks`) or the
`JAFLOW_NPROC` environment variable; more than one starts `torch.distributed.run` on this node
(NCCL on GPUs, gloo on CPU), each process running `python -m jaflow.train.recipes job.json`.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jaflow.errors import ConfigError
from jaflow.io import atomic_path
from jaflow.train.recipes import TrainJob, train

log = logging.getLogger(__name__)


def nproc(resources: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    if env.get("JAFLOW_NPROC"):
        return int(env["JAFLOW_NPROC"])
    resources = resources or {}
    if int(resources.get("nodes", 1) or 1) > 1:
        raise ConfigError(
            "resources.nodes > 1: multi-node training is not supported; use one node with several GPUs"
        )
    for key in ("gpu", "gpus", "tasks"):
        value = resources.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return 1


def launch_command(job_file: Path, n: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(n),
        "-m",
        "jaflow.train.recipes",
        str(job_file),
    ]


def run(job: TrainJob, n: int = 1) -> None:
    """Train `job` here (n == 1, or already inside a launched process) or through torchrun."""
    if n <= 1 or "LOCAL_RANK" in os.environ:
        train(job)
        return
    job_file = Path(job.out_dir) / "job.json"
    with atomic_path(job_file) as tmp:
        tmp.write_text(job.to_json(), encoding="utf-8")
    cmd = launch_command(job_file, n)
    log.info("launching %d processes: %s", n, " ".join(cmd))
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    try:  # inside log_to, stdout is the job's log file: the processes write there too
        sys.stdout.fileno()
        out = sys.stdout
    except (AttributeError, OSError, ValueError):
        out = None
    try:
        subprocess.run(cmd, check=True, env=env, stdout=out, stderr=subprocess.STDOUT)
    except subprocess.CalledProcessError as e:
        raise RuntimeError(
            f"training {job.name}: torchrun exited with status {e.returncode} (see the log)"
        ) from None
