"""Run a training job in one process, or re-launch it on several through torchrun.

Processes per node come from the job's resources (`gpu`/`gpus`, else `tasks`) or the
`JAFLOW_NPROC` environment variable; more than one starts `torch.distributed.run` on this node
(NCCL on GPUs, gloo on CPU), each process running `python -m jaflow.train.recipes job.json`.

Several nodes (a Slurm job with SLURM_JOB_NUM_NODES > 1, or JAFLOW_NNODES > 1 inside an
allocation) start one torchrun per node through `srun --ntasks-per-node=1`, all meeting at a
c10d rendezvous on the allocation's first node, port JAFLOW_RDZV_PORT (default 29400), with the
Slurm job id as rendezvous id: the standard Slurm pattern. `resources.gpu` is then the number of
GPUs per node.

`python -m jaflow.train.launch job.json N` runs a saved job the same way (tests, manual runs).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jaflow.errors import ConfigError
from jaflow.io import atomic_path

log = logging.getLogger(__name__)

RDZV_PORT = "29400"


def nproc(resources: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Processes per node."""
    env = os.environ if env is None else env
    if env.get("JAFLOW_NPROC"):
        return int(env["JAFLOW_NPROC"])
    resources = resources or {}
    nodes = int(resources.get("nodes") or 1)
    for key in ("gpu", "gpus", "tasks"):
        value = resources.get(key)
        if isinstance(value, int) and value > 0:
            if nodes > 1 and key != "tasks" and value % nodes:
                raise ConfigError(
                    f"resources.{key}: {value} GPUs do not split evenly over {nodes} nodes"
                )
            return value // nodes if key != "tasks" else max(1, value // nodes)
    return 1


def slurm_job(env: Mapping[str, str]) -> dict[str, str]:
    """`scontrol show job $SLURM_JOB_ID` as key -> value; {} outside a Slurm job. Inside a
    Snakemake Slurm job the jobstep executor strips every SLURM_* variable but the job id."""
    jobid = env.get("SLURM_JOB_ID")
    if not jobid or not shutil.which("scontrol", path=env.get("PATH")):
        return {}
    out = subprocess.run(
        ["scontrol", "show", "job", "-o", jobid], capture_output=True, text=True, env=dict(env)
    )
    return (
        dict(kv.split("=", 1) for kv in out.stdout.split() if "=" in kv)
        if out.returncode == 0
        else {}
    )


def allocation_nodes(env: Mapping[str, str]) -> int:
    value = (
        env.get("SLURM_JOB_NUM_NODES")
        or env.get("SLURM_NNODES")
        or slurm_job(env).get("NumNodes")
        or "1"
    )
    return int(value.split("-")[0])


def nnodes(env: Mapping[str, str] | None = None) -> int:
    """Nodes of this run: JAFLOW_NNODES, else the Slurm allocation's node count, else 1."""
    env = os.environ if env is None else env
    return int(env["JAFLOW_NNODES"]) if env.get("JAFLOW_NNODES") else allocation_nodes(env)


def head_node(env: Mapping[str, str] | None = None) -> str:
    """Address of the allocation's first node: the first of `scontrol show hostnames
    $SLURM_JOB_NODELIST`, as its NodeAddr (which Slurm sets to the node name unless the site
    gives another address)."""
    env = os.environ if env is None else env
    nodelist = (
        env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST") or slurm_job(env).get("NodeList")
    )
    if not nodelist:
        raise RuntimeError(
            "multi-node training runs inside a Slurm allocation: SLURM_JOB_NODELIST is not set"
        )

    def scontrol(*args: str) -> str:
        return subprocess.run(
            ["scontrol", *args], check=True, capture_output=True, text=True, env=dict(env)
        ).stdout

    first = scontrol("show", "hostnames", nodelist).split()[0]
    fields = dict(
        kv.split("=", 1) for kv in scontrol("show", "node", "-o", first).split() if "=" in kv
    )
    return fields.get("NodeAddr") or first


def torchrun_command(
    job_file: Path, n: int, nodes: int = 1, rdzv: str | None = None, rdzv_id: str = "jaflow"
) -> list[str]:
    run = [sys.executable, "-m", "torch.distributed.run"]
    if nodes <= 1:
        run += ["--standalone", "--nproc_per_node", str(n)]
    else:
        run += [
            "--nnodes",
            str(nodes),
            "--nproc_per_node",
            str(n),
            "--rdzv_backend",
            "c10d",
            "--rdzv_endpoint",
            str(rdzv),
            "--rdzv_id",
            rdzv_id,
        ]
    return run + ["-m", "jaflow.train.recipes", str(job_file)]


def launch_command(
    job_file: Path, n: int, nodes: int = 1, env: Mapping[str, str] | None = None
) -> list[str]:
    """torchrun on this node; for several nodes, one torchrun per node through srun."""
    env = os.environ if env is None else env
    if nodes <= 1:
        return torchrun_command(job_file, n)
    if not shutil.which("srun", path=env.get("PATH")):
        raise RuntimeError(
            f"{nodes} nodes: srun is not on PATH (multi-node training runs inside a Slurm job)"
        )
    port = env.get("JAFLOW_RDZV_PORT") or RDZV_PORT
    rdzv = f"{head_node(env)}:{port}"
    # One torchrun per node. JAFLOW_NNODES above the allocation's node count (a test on one
    # host) puts several of these "nodes" on one Slurm node, through the same srun.
    alloc = allocation_nodes(env)
    if nodes % alloc:
        raise ConfigError(
            f"JAFLOW_NNODES={nodes} does not split over the allocation's {alloc} nodes"
        )
    srun = [
        "srun",
        f"--nodes={alloc}",
        f"--ntasks={nodes}",
        f"--ntasks-per-node={nodes // alloc}",
        "--overlap",  # also from inside a job step (Snakemake's jobstep executor)
        "--kill-on-bad-exit=1",
    ]
    return srun + torchrun_command(job_file, n, nodes, rdzv, env.get("SLURM_JOB_ID") or "jaflow")


def run(job, n: int = 1) -> None:
    """Train `job` here (n == 1 on one node, or already inside a launched process) or through
    torchrun (and srun for several nodes)."""
    from jaflow.train.recipes import train

    nodes = nnodes()
    if (n <= 1 and nodes <= 1) or "LOCAL_RANK" in os.environ:
        train(job)
        return
    job_file = Path(job.out_dir) / "job.json"
    with atomic_path(job_file) as tmp:
        tmp.write_text(job.to_json(), encoding="utf-8")
    cmd = launch_command(job_file, n, nodes)
    log.info("launching %d node(s) x %d processes: %s", nodes, n, " ".join(cmd))
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
            f"training {job.name}: {cmd[0]} exited with status {e.returncode} (see the log)"
        ) from None


def main(argv: list[str] | None = None) -> None:
    from jaflow.train.recipes import TrainJob

    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO)
    run(
        TrainJob.from_json(Path(argv[0]).read_text(encoding="utf-8")),
        int(argv[1]) if len(argv) > 1 else 1,
    )


if __name__ == "__main__":
    main()
