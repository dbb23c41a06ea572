"""One JGLUE evaluation job: a suite on a model through `lm_eval.simple_evaluate` (HF backend).

Writes lm-eval's raw results (`results.json`), per-sample logs (`samples_<task>.jsonl`) and the
tidy `scores.csv` the report stage reads:
`model, task, task_version, template, num_fewshot, metric, value, stderr, n, scale, card_value`.
`value`/`stderr` are on lm-eval's 0-1 scale; `card_value` is the number as the model cards print
it (x100 for JSQuAD/JAQKET EM/F1 and ROUGE-2, as jp-stable reports them; else = value).

Evaluations are cached across experiments when `jglue.cache_dir` is set: the key hashes the
model's files (or its hub id), the suite's resolved tasks, the data, the task YAMLs, seed,
limit, batch size, max length and the lm-eval version, so a second experiment that evaluates the
same base model on the same suite copies the first one's outputs instead of rerunning lm-eval.
(Snakemake's own between-workflow cache cannot hash a model directory given as input.)
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import shutil
from pathlib import Path
from typing import Any

from jaflow.errors import ConfigError
from jaflow.evaluate.jglue.data import data_files
from jaflow.evaluate.jglue.metrics import CARD_SCALE
from jaflow.evaluate.jglue.templates import FAMILIES, TEMPLATES, task_name
from jaflow.graph import is_local_path
from jaflow.io import atomic_path, sha256_file, sha256_tree, write_json

log = logging.getLogger(__name__)
TASKS_DIR = Path(__file__).resolve().parents[4] / "workflow" / "tasks"
SCORE_COLUMNS = ["model", "task", "task_version", "template", "num_fewshot", "metric", "value", "stderr", "n",
                 "card_value"]


def resolve_task(entry: dict[str, Any]) -> str:
    """The lm-eval task name of a suite entry: a jp-stable family with version and template,
    or any other lm-eval task name as given."""
    if entry["task"] not in FAMILIES:
        return entry["task"]
    name = task_name(entry["task"], entry.get("version"), entry.get("template"))
    if name not in TEMPLATES:
        raise ConfigError(f"jglue: no jp-stable task '{name}' for {entry} (known: {sorted(TEMPLATES)})")
    return name


def task_spec(entry: dict[str, Any], data_dir: str | Path, tasks_dir: Path = TASKS_DIR) -> str | dict[str, Any]:
    """What simple_evaluate gets for one suite entry: a jp-stable task's full config with its
    data files pointed at `data_dir` and the entry's few-shot count, or a plain task name."""
    from lm_eval.tasks._yaml_loader import load_yaml

    name = resolve_task(entry)
    if name not in TEMPLATES:
        return name
    cfg = load_yaml(tasks_dir / f"{name}.yaml", resolve_func=True)
    spec = TEMPLATES[name]
    splits = tuple(cfg["dataset_kwargs"]["data_files"])
    cfg["dataset_kwargs"] = {"data_files": data_files(data_dir, spec.family, splits)}
    if entry.get("num_fewshot") is not None:
        cfg["num_fewshot"] = entry["num_fewshot"]
    return cfg


def model_args(hf: dict[str, Any]) -> dict[str, Any]:
    """lm-eval HF model arguments from `graph.hf_args(model)`."""
    args = {"pretrained": hf["pretrained"], "tokenizer": hf.get("tokenizer") or hf["pretrained"],
            "use_fast_tokenizer": hf.get("use_fast", True), "dtype": hf.get("dtype") or "auto",
            "trust_remote_code": hf.get("trust_remote_code", False)}
    if hf.get("peft"):
        args["peft"] = hf["peft"]
    return args


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def tidy_scores(model: str, results: dict[str, Any], entries: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """scores.csv rows from lm-eval's results dict."""
    rows = []
    for task, res in results["results"].items():
        spec = TEMPLATES.get(task)
        cfg = results.get("configs", {}).get(task, {})
        n = results.get("n-samples", {}).get(task, {}).get("effective")
        for key, value in res.items():
            if "," not in key or "_stderr" in key:
                continue
            metric, filt = key.split(",", 1)
            value = _num(value)
            if value is None:
                continue
            stderr = _num(res.get(f"{metric}_stderr,{filt}"))
            scale = CARD_SCALE.get(metric, 1.0) if spec is not None else 1.0
            rows.append({
                "model": model, "task": spec.family if spec else task,
                "task_version": (spec.version or "") if spec else str(results.get("versions", {}).get(task, "")),
                "template": (spec.template or "") if spec else "",
                "num_fewshot": entries.get(task, {}).get("num_fewshot", cfg.get("num_fewshot")) or 0,
                # lm-eval's filters (gsm8k: strict-match, flexible-extract) stay apart.
                "metric": metric if filt == "none" else f"{metric},{filt}", "value": value, "stderr": "" if stderr is None else stderr, "n": n,
                "card_value": value * scale,
            })
    return rows


def write_scores(path: str | Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=SCORE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")


def _fingerprint(ref: str | None) -> Any:
    if not ref:
        return None
    return sha256_tree(ref) if is_local_path(ref) and Path(ref).is_dir() else ref


def cache_key(hf: dict[str, Any], tasks: list[dict[str, Any]], data_dir: str | Path, tasks_dir: Path,
              settings: dict[str, Any]) -> str:
    """Content hash of everything an evaluation's numbers depend on (not the model's name)."""
    import lm_eval

    names = [resolve_task(t) for t in tasks]
    families = sorted({TEMPLATES[n].family for n in names if n in TEMPLATES})
    key = {
        "model": {k: v for k, v in model_args(hf).items() if k not in ("pretrained", "tokenizer", "peft")},
        "weights": _fingerprint(hf["pretrained"]), "peft": _fingerprint(hf.get("peft")),
        "tokenizer": _fingerprint(hf.get("tokenizer")), "tasks": tasks, "resolved": names,
        "data": {f: sha256_tree(Path(data_dir) / f) for f in families},
        "yamls": {n: sha256_file(tasks_dir / f"{n}.yaml") for n in names
                  if n in TEMPLATES},
        "settings": settings, "lm_eval": lm_eval.__version__,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def _copy_cached(src: Path, out_dir: Path, model: str) -> list[dict[str, Any]]:
    with open(src / "scores.csv", newline="", encoding="utf-8") as f:
        rows = [dict(r, model=model) for r in csv.DictReader(f)]
    for p in sorted(src.glob("*")):
        if p.name != "scores.csv":
            with atomic_path(out_dir / p.name) as tmp:
                shutil.copyfile(p, tmp)
    write_scores(out_dir / "scores.csv", rows)
    return rows


def evaluate_suite(*, model: str, hf: dict[str, Any], tasks: list[dict[str, Any]], data_dir: str | Path,
                   out_dir: str | Path, seed: int = 1234, limit: int | None = None,
                   batch_size: int | str = 1, max_length: int | None = None, device: str | None = None,
                   tasks_dir: Path = TASKS_DIR, cache_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """Evaluate `tasks` (suite entries) on one model; write results.json, samples, scores.csv."""
    out_dir = Path(out_dir)
    if cache_dir:
        settings = {"seed": seed, "limit": limit, "batch_size": batch_size, "max_length": max_length}
        cached = Path(cache_dir).expanduser() / cache_key(hf, tasks, data_dir, tasks_dir, settings)
        if (cached / "scores.csv").is_file():
            log.info("jglue: %s: reusing the cached evaluation %s", model, cached)
            return _copy_cached(cached, out_dir, model)
        rows = evaluate_suite(model=model, hf=hf, tasks=tasks, data_dir=data_dir, out_dir=out_dir, seed=seed,
                              limit=limit, batch_size=batch_size, max_length=max_length, device=device,
                              tasks_dir=tasks_dir)
        with atomic_path(cached) as tmp:
            shutil.copytree(out_dir, tmp)
        log.info("jglue: %s: stored in the evaluation cache %s", model, cached)
        return rows
    import lm_eval
    from lm_eval.tasks import TaskManager

    specs = [task_spec(t, data_dir, tasks_dir) for t in tasks]
    entries = {resolve_task(t): t for t in tasks}
    margs = model_args(hf)
    if max_length:
        margs["max_length"] = max_length
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    manager = TaskManager(include_path=str(tasks_dir), include_defaults=False, metadata=dict(margs))
    if any(isinstance(s, str) and s not in manager.all_tasks for s in specs):
        # lm-eval's own catalogue (most of a minute to index), only when a suite names one of its tasks
        manager = TaskManager(include_path=str(tasks_dir), metadata=dict(margs))
    loaded = []
    for entry, spec in zip(tasks, specs, strict=True):
        if isinstance(spec, dict):
            loaded.append(spec)
            continue
        # a plain task name: build it here so the entry's few-shot count applies to it alone
        built = manager.load([spec])["tasks"]
        for task in built.values():
            if entry.get("num_fewshot") is not None:
                task.set_config(key="num_fewshot", value=entry["num_fewshot"])
        loaded.extend(built.values())
    fewshot = {t["task"]: t.get("num_fewshot") for t in tasks}
    log.info("jglue: %s on %s (batch size %s, seed %s, limit %s): %s", list(entries), model, batch_size, seed,
             limit, fewshot)
    out = lm_eval.simple_evaluate(
        model="hf", model_args=margs, tasks=loaded, task_manager=manager, batch_size=batch_size,
        device=device, limit=limit, log_samples=True, random_seed=seed, numpy_random_seed=seed,
        torch_random_seed=seed, fewshot_random_seed=seed, bootstrap_iters=1000,
    )
    samples = out.pop("samples", {})
    out["jaflow"] = {"model": model, "batch_size": batch_size, "seed": seed, "limit": limit,
                     "model_args": margs, "suite": tasks}
    rows = tidy_scores(model, out, entries)
    for task, docs in samples.items():
        with atomic_path(out_dir / f"samples_{task}.jsonl") as tmp:
            tmp.write_text("".join(json.dumps(d, ensure_ascii=False, default=str) + "\n" for d in docs),
                           encoding="utf-8")
    write_json(out_dir / "results.json", json.loads(json.dumps(out, default=str)))
    write_scores(out_dir / "scores.csv", rows)
    return rows
