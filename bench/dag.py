"""Orchestration speed: the DAG of a 1,000-point sweep, and a no-op rerun of the finished demo.

    PYTHONPATH=$PWD/src python bench/dag.py            # both timings (builds the demo once)
    PYTHONPATH=$PWD/src python bench/dag.py --points 200 --demo-targets results/datasets/demo_mix/manifest.json

Targets on these machines: DAG build (`snakemake -n`) of 1,000 points under 10 s; a rerun of
the finished demo (a real run, no -n) that runs no job under 3 s. Each timing is the wall time
of the whole `snakemake` command, Python start-up included; the best of --repeat runs.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
TARGET_DAG_S = 10.0
TARGET_NOOP_S = 3.0


def sweep_config(points: int) -> dict:
    """The demo config plus a sweep of `points` LoRA runs, each evaluated and reported."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["models"]["sweep_template"] = dict(config["models"]["tiny_qlora"])
    ranks = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    n_rates = -(-points // len(ranks))
    rates = [round(1e-4 * (i + 1), 6) for i in range(n_rates)]
    config["sweeps"] = {
        "big": {
            "model": "sweep_template",
            "points": [
                {"train.lora_r": r, "train.learning_rate": lr} for lr in rates for r in ranks
            ][:points],
        }
    }
    config["jglue"]["runs"].append({"suite": "jglue4", "models": ["big"]})
    config["reports"]["big"] = {"title": "1,000-point sweep", "models": ["big"]}
    return config


CPU_S: list[float] = []  # CPU seconds (user + sys) of each snakemake call, beside its wall time


def snakemake(args: list[str], cwd: Path) -> tuple[float, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(
        [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU_S.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    if out.returncode != 0:
        sys.exit(f"snakemake {' '.join(args)} failed:\n{out.stdout[-3000:]}{out.stderr[-3000:]}")
    return elapsed, out.stdout + out.stderr


def job_count(log: str) -> int:
    m = re.search(r"^total\s+(\d+)", log, re.M)
    return int(m.group(1)) if m else 0


def bench_dag(points: int, repeat: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory(prefix="jaflow-dag-") as tmp:
        cfg = Path(tmp) / "sweep.yaml"
        cfg.write_text(yaml.safe_dump(sweep_config(points), sort_keys=False))
        runs = []
        for _ in range(repeat):
            runs.append(
                (
                    *snakemake(["-n", "--quiet", "rules", "--configfile", str(cfg)], Path(tmp)),
                    CPU_S[-1],
                )
            )
    best = min(runs)
    return best[0], best[2], job_count(runs[0][1])


def bench_noop(demo_dir: Path, targets: list[str], cores: int, repeat: int) -> tuple[float, int]:
    config = ["--configfile", str(REPO / "config" / "config.yaml")]
    demo_dir.mkdir(parents=True, exist_ok=True)
    _, log = snakemake([f"-c{cores}", *targets, *config], demo_dir)  # finish the demo (once)
    built = job_count(log)
    if built:
        print(f"built the demo in {demo_dir}: {built} jobs")
    _, dry = snakemake(["-n", "-F", *targets, *config], demo_dir)
    n_jobs = job_count(dry)  # jobs of the finished demo (all of them, forced, dry run)
    times = []
    for _ in range(repeat):
        elapsed, log = snakemake(["-c1", *targets, *config], demo_dir)
        if "Nothing to be done" not in log:
            sys.exit(f"the rerun of the finished demo ran jobs:\n{log[-3000:]}")
        times.append((elapsed, CPU_S[-1]))
    best = min(times)
    return best[0], best[1], n_jobs


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--demo-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "jaflow-bench-demo",
        help="where the demo is built once and rerun (kept between invocations)",
    )
    ap.add_argument("--demo-targets", nargs="*", default=["all"])
    ap.add_argument("--cores", type=int, default=2)
    args = ap.parse_args()

    load = os.getloadavg()[0]
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load:.1f} (wall time counts waiting for a CPU)"
    )
    dag_s, dag_cpu, dag_jobs = bench_dag(args.points, args.repeat)
    print(
        f"DAG of a {args.points}-point sweep: {dag_s:.2f} s wall, {dag_cpu:.2f} s CPU, {dag_jobs} jobs "
        f"(target < {TARGET_DAG_S:.0f} s: {'met' if dag_s < TARGET_DAG_S else 'MISSED'})"
    )
    noop_s, noop_cpu, noop_jobs = bench_noop(
        args.demo_dir, args.demo_targets, args.cores, args.repeat
    )
    print(
        f"no-op rerun of the finished demo ({' '.join(args.demo_targets)}): {noop_s:.2f} s wall, "
        f"{noop_cpu:.2f} s CPU, 0 of {noop_jobs} jobs run (target < {TARGET_NOOP_S:.0f} s: "
        f"{'met' if noop_s < TARGET_NOOP_S else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
