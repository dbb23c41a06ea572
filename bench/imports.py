"""The import tax: what each job kind pays in imports, and the demo's CPU time and import share.

1. Job kinds: each `workflow/scripts/*.py` runs its top-level imports in a fresh interpreter
   (the script's own `import` lines, found with `ast`), timed in CPU seconds and printed as a
   ratio of a bare `import torch`, with the heavy libraries each one pulled in.
2. The demo: `snakemake --cores N` of the tiny demo in a temporary directory with a
   `sitecustomize` hook in every Python process (Snakemake and each job): it adds up the CPU
   time spent inside outermost imports (`__import__` and `importlib.import_module`, call-site
   imports included) and the process's total CPU time, and appends one line per process.

    PYTHONPATH=$PWD/src python bench/imports.py                  # job kinds, then the demo
    PYTHONPATH=$PWD/src python bench/imports.py --skip-demo
    PYTHONPATH=$PWD/src python bench/imports.py --repo /work/wt/perf-base   # another checkout ("before")
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = (
    "torch",
    "transformers",
    "peft",
    "bitsandbytes",
    "torch._inductor",
    "accelerate",
    "mergekit",
    "lm_eval",
    "datasets",
    "trl",
    "pandas",
    "matplotlib",
    "sklearn",
)

HOOK = r"""
import atexit, builtins, importlib, json, os, sys, time

_depth = [0]
_spent = [0.0]
_orig_import = builtins.__import__
_orig_import_module = importlib.import_module


def _timed(fn):
    def wrapper(*args, **kwargs):
        if _depth[0]:
            return fn(*args, **kwargs)
        _depth[0] += 1
        t = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            _spent[0] += time.process_time() - t
            _depth[0] -= 1
    return wrapper


builtins.__import__ = _timed(_orig_import)
importlib.import_module = _timed(_orig_import_module)


@atexit.register
def _report():
    t = os.times()
    line = {"argv": sys.argv[:2], "cpu_s": t.user + t.system, "import_cpu_s": _spent[0]}
    with open(os.environ["JAFLOW_IMPORT_LOG"], "a") as f:
        f.write(json.dumps(line) + "\n")
"""


def script_imports(path: Path) -> str:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lines = [ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    return "\n".join(lines)


PROBE = r"""
import sys, time
t = time.process_time()
exec(compile(sys.argv[1], "<imports>", "exec"))
spent = time.process_time() - t
print(spent, " ".join(m for m in sys.argv[2].split() if m in sys.modules))
"""


def time_imports(code: str, repo: Path, repeat: int) -> tuple[float, str]:
    env = dict(os.environ, PYTHONPATH=str(repo / "src"), OMP_NUM_THREADS="1")
    best, mods = float("inf"), ""
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", PROBE, code, " ".join(HEAVY)],
            env=env,
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split(maxsplit=1)
        if float(out[0]) < best:
            best, mods = float(out[0]), (out[1].strip() if len(out) > 1 else "")
    return best, mods


def job_kinds(repo: Path, repeat: int) -> float:
    torch_s, _ = time_imports("import torch", repo, repeat)
    print(
        f"job kinds of {repo} (top-level imports of workflow/scripts/*.py, best of {repeat}, CPU s)"
    )
    print(f"  {'import torch':24s} {torch_s:6.2f} s   1.00x")
    for script in sorted((repo / "workflow" / "scripts").glob("*.py")):
        s, mods = time_imports(script_imports(script), repo, repeat)
        print(f"  {script.stem:24s} {s:6.2f} s  {s / torch_s:5.2f}x torch   {mods or '-'}")
    return torch_s


def demo(repo: Path, cores: int, torch_s: float) -> None:
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    with tempfile.TemporaryDirectory(prefix="jaflow-imports-") as tmp:
        tmp = Path(tmp)
        (tmp / "hook").mkdir()
        (tmp / "hook" / "sitecustomize.py").write_text(HOOK)
        log = tmp / "imports.jsonl"
        env = dict(
            os.environ,
            OMP_NUM_THREADS="1",
            JAFLOW_IMPORT_LOG=str(log),
            PYTHONPATH=os.pathsep.join([str(tmp / "hook"), str(repo / "src")]),
        )
        work = tmp / "work"
        work.mkdir()
        out = subprocess.run(
            [
                snakemake,
                "--snakefile",
                str(repo / "Snakefile"),
                "--cores",
                str(cores),
                "--configfile",
                str(repo / "config" / "config.yaml"),
            ],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            sys.exit(f"the demo failed:\n{out.stdout[-3000:]}{out.stderr[-3000:]}")
        rows = [json.loads(line) for line in log.read_text().splitlines()]
    kinds: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for r in rows:
        argv = " ".join(r["argv"])
        kind = next(
            (p.split(".")[-2] for p in r["argv"] if p.endswith(".py") and ".snakemake" in p), None
        )
        kind = kind or (
            "snakemake" if "snakemake" in argv else Path(r["argv"][0]).name or "python -c"
        )
        k = kinds[kind]
        k[0] += 1
        k[1] += r["cpu_s"]
        k[2] += r["import_cpu_s"]
    total = sum(k[1] for k in kinds.values())
    imports = sum(k[2] for k in kinds.values())
    print(
        f"demo of {repo}: {len(rows)} Python processes, {total:.1f} CPU s, of which imports {imports:.1f} s "
        f"({100 * imports / total:.0f}%)"
    )
    for kind, (n, cpu, imp) in sorted(kinds.items(), key=lambda kv: -kv[1][1]):
        print(
            f"  {kind:24s} x{n:<3d} {cpu:7.1f} CPU s  imports {imp:6.1f} s ({100 * imp / max(cpu, 1e-9):3.0f}%)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--repo", type=Path, default=REPO, help="checkout to measure (default: this one)"
    )
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--skip-demo", action="store_true")
    ap.add_argument("--skip-jobs", action="store_true")
    a = ap.parse_args()
    torch_s = (
        job_kinds(a.repo.resolve(), a.repeat)
        if not a.skip_jobs
        else time_imports("import torch", a.repo, 1)[0]
    )
    if not a.skip_demo:
        demo(a.repo.resolve(), a.cores, torch_s)


if __name__ == "__main__":
    main()
