"""Pick free GPUs for a job on one workstation.

Snakemake counts GPUs (`--resources gpu=N`, the local profile) but never says which device a
job may use, so two jobs would both start on cuda:0. Every GPU job's script (each rule the local
profile gives a `gpu` resource; tests/test_gpus.py checks they all do) wraps its work in
`job_gpus(snakemake.resources)`: it locks free device ids (one lock file per device, released
when the process ends, even on a crash) and sets CUDA_VISIBLE_DEVICES before torch touches
CUDA. A job without a `gpu` resource (a plain CPU run) and a job under Slurm (its devices are
already bound) are left as they are.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LOCK_DIR = ".snakemake/gpu_locks"


def device_pool() -> list[str]:
    """Devices jobs may share out: CUDA_VISIBLE_DEVICES if set, else 0..JAFLOW_GPUS-1."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d for d in visible.split(",") if d.strip()]
    return [str(i) for i in range(int(os.environ.get("JAFLOW_GPUS") or 1))]


@contextlib.contextmanager
def claim_gpus(n: int, lock_dir: str | Path = LOCK_DIR, poll_s: float = 1.0) -> Iterator[list[str]]:
    """Hold `n` free devices of the pool for the block; yields their ids."""
    if n < 1 or "SLURM_JOB_ID" in os.environ:
        yield [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d]
        return
    pool = device_pool()
    if n > len(pool):
        raise ValueError(f"a job asks for {n} GPUs but only {len(pool)} are available ({pool})")
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    held: list[tuple[str, int]] = []
    while True:
        for device in pool:
            fd = os.open(lock_dir / f"gpu{device}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            held.append((device, fd))
            if len(held) == n:
                break
        if len(held) == n:
            break
        for _, fd in held:  # never sit on part of a request while waiting: no deadlocks
            os.close(fd)
        held = []
        time.sleep(poll_s)
    previous = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(d for d, _ in held)
    try:
        yield [d for d, _ in held]
    finally:
        if previous is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = previous
        for _, fd in held:
            os.close(fd)


def job_gpus(resources: Any) -> contextlib.AbstractContextManager[list[str]]:
    """`claim_gpus` for a Snakemake job: as many devices as its `gpu` resource (none if unset)."""
    items = dict(resources.items()) if hasattr(resources, "items") else {}
    n = items.get("gpu") or 0
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"resources.gpu: expected a whole number of GPUs, got {n!r}")
    return claim_gpus(n)
