"""One JGLUE evaluation job: a suite on a model through `lm_eval.simple_evaluate`.

The model is `JpStableLM` (jp-stable's `hf-causal` / `hf-causal-experimental` request semantics,
`jglue.harness` or per suite entry) or lm-eval's own HFLM (`harness: lm-eval`), with the tokenizer
loaded by `jaflow.hf.load_tokenizer` (slow sentencepiece for `use_fast: false`).

Writes lm-eval's results (`results.json`, byte-reproducible: no memory addresses, absolute paths,
timestamps or names; host and timing fields go to `run_info.json`), per-sample logs
(`samples_<task>.jsonl`) and the tidy `scores.csv` the report stage reads (`SCORE_COLUMNS`).
`value`/`stderr` are on lm-eval's 0-1 scale; `card_value` is the number as the model cards print
it (x100 for JSQuAD/JAQKET EM/F1 and ROUGE-2, as jp-stable reports them; else = value).

With `jglue.cache_dir` set, evaluations are cached across experiments under a content key
(`cache_key`: the model's `jaflow.provenance.model_identity`, the data files' sha256, the
resolved tasks and YAMLs, the settings, the code); never a name or a path.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
import shutil
from pathlib import Path
from typing import Any

from jaflow.errors import ConfigError
from jaflow.evaluate.jglue.data import data_files, read_provenance
from jaflow.evaluate.jglue.metrics import CARD_SCALE
from jaflow.evaluate.jglue.suites import ALL_HARNESSES
from jaflow.evaluate.jglue.templates import (
    FAMILIES,
    SYSTEM_PROMPTS,
    TEMPLATES,
    llama2_desc,
    task_name,
)
from jaflow.io import atomic_path, sha256_file, write_json

log = logging.getLogger(__name__)
TASKS_DIR = Path(__file__).resolve().parents[4] / "workflow" / "tasks"
SCORE_COLUMNS = [
    "model",
    "suite",
    "task",
    "task_version",
    "template",
    "harness",
    "num_fewshot",
    "metric",
    "value",
    "stderr",
    "n",
    "card_value",
]


def resolve_task(entry: dict[str, Any]) -> str:
    """The lm-eval task name of a suite entry: a jp-stable family with version and template,
    or any other lm-eval task name as given."""
    if entry["task"] not in FAMILIES:
        return entry["task"]
    name = task_name(entry["task"], entry.get("version"), entry.get("template"))
    if name not in TEMPLATES:
        why = UNSHIPPED.get((entry["task"], entry.get("version")), "")
        raise ConfigError(
            f"jglue: no jp-stable task '{name}' for {entry}{why} (known: {sorted(TEMPLATES)})"
        )
    return name


# Task versions the cards ran that jaflow cannot ship, and why (docs/jglue.md).
UNSHIPPED = {
    ("jaqket_v2", "0.1"): (
        ": JAQKET v2 version 0.1 read a 2023 hub loading script whose documents can no longer be "
        "had, so jaflow cannot reproduce it; version 0.2 is the closest (other documents)"
    ),
}


def task_spec(
    entry: dict[str, Any], data_dir: str | Path, tasks_dir: Path = TASKS_DIR
) -> str | dict[str, Any]:
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
    if entry.get("system_prompt"):
        if spec.template != "0.6":
            raise ConfigError(f"jglue: system_prompt is for 0.6 templates only, not {name}")
        cfg["description"] = llama2_desc(SYSTEM_PROMPTS[entry["system_prompt"]])
    return cfg


def model_args(hf: dict[str, Any]) -> dict[str, Any]:
    """lm-eval HF model arguments from `graph.hf_args(model)` (the tokenizer is loaded by jaflow)."""
    args = {
        "pretrained": hf["pretrained"],
        "tokenizer": hf["tokenizer"] or hf["pretrained"],
        "use_fast_tokenizer": hf["use_fast"],
        "dtype": hf["dtype"] or "auto",
        "trust_remote_code": hf["trust_remote_code"],
    }
    if hf["peft"]:
        args["peft"] = hf["peft"]
    if hf.get("revision"):  # a hub base pinned in the config
        args["revision"] = hf["revision"]
    return args


def entry_harness(entry: dict[str, Any], default: str) -> str:
    """The harness of a suite entry: its own `harness`, else `jglue.harness`."""
    harness = entry.get("harness") or default
    if harness not in ALL_HARNESSES:
        raise ConfigError(
            f"jglue.harness: unknown harness '{harness}' (one of {list(ALL_HARNESSES)})"
        )
    return harness


def build_model(
    hf: dict[str, Any],
    harnesses: dict[str, str],
    default: str,
    *,
    batch_size: int | str,
    loglikelihood_batch_size: int,
    max_length: int | None,
    device: str,
):
    """The lm-eval model of a run: `JpStableLM` (jp-stable's tokenization and generation) or lm-eval's
    own HFLM (`harness: lm-eval`), with jaflow's tokenizer (slow sentencepiece for `use_fast: false`)."""
    from jaflow.hf import load_tokenizer

    kinds = {h == "lm-eval" for h in [default, *harnesses.values()]}
    if len(kinds) > 1:
        raise ConfigError(
            f"jglue.harness: one suite cannot mix lm-eval with jp-stable harnesses ({harnesses})"
        )
    margs = model_args(hf)
    kwargs: dict[str, Any] = {
        k: v for k, v in margs.items() if k not in ("tokenizer", "use_fast_tokenizer")
    }
    kwargs.update(tokenizer=load_tokenizer(hf), device=device)
    if max_length:
        kwargs["max_length"] = max_length
    if kinds == {True}:
        from lm_eval.models.huggingface import HFLM

        return HFLM(batch_size=batch_size, **kwargs)
    if batch_size == "auto":
        raise ConfigError(
            "jglue.batch_size: 'auto' is only for harness lm-eval (jp-stable's batches are fixed)"
        )
    from jaflow.evaluate.jglue.model import JpStableLM

    jp_default = default if default != "lm-eval" else "hf-causal"
    return JpStableLM(
        batch_size=loglikelihood_batch_size,
        harness=jp_default,
        task_harness=harnesses,
        gen_batch_size=int(batch_size),
        **kwargs,
    )


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def tidy_scores(
    model: str,
    suite: str,
    results: dict[str, Any],
    entries: dict[str, dict[str, Any]],
    harnesses: dict[str, str],
) -> list[dict[str, Any]]:
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
            rows.append(
                {
                    "model": model,
                    "suite": suite,
                    "task": spec.family if spec else task,
                    "task_version": (spec.version or "")
                    if spec
                    else str(results.get("versions", {}).get(task, "")),
                    "template": (spec.template or "") if spec else "",
                    "harness": harnesses.get(task, ""),
                    "num_fewshot": entries.get(task, {}).get("num_fewshot", cfg.get("num_fewshot"))
                    or 0,
                    # lm-eval's filters (gsm8k: strict-match, flexible-extract) stay apart.
                    "metric": metric if filt == "none" else f"{metric},{filt}",
                    "value": value,
                    "stderr": "" if stderr is None else stderr,
                    "n": n,
                    "card_value": value * scale,
                }
            )
    return rows


def write_scores(path: str | Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=SCORE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")


# lm-eval results fields that describe the host and the moment, not the scores (-> run_info.json)
HOST_FIELDS = (
    "date",
    "start_time",
    "end_time",
    "total_evaluation_time_seconds",
    "pretty_env_info",
    "git_hash",
    "upper_git_hash",
    "model_source",
    "model_name",
    "model_name_sanitized",
)
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def reproducible(obj: Any, roots: dict[str, str]) -> Any:
    """`obj` with no memory addresses and no absolute paths (`roots`: path prefix -> placeholder)."""
    if isinstance(obj, dict):
        return {str(k): reproducible(v, roots) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [reproducible(v, roots) for v in obj]
    if callable(obj) and hasattr(obj, "__qualname__"):
        return f"{getattr(obj, '__module__', '')}.{obj.__qualname__}"
    if obj is None or isinstance(obj, (bool, int, float)):
        return obj
    text = _ADDRESS.sub("", str(obj))
    for prefix, name in sorted(roots.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(prefix, name)
    return text


def data_hashes(specs: list[str | dict[str, Any]]) -> dict[str, str]:
    """sha256 of every materialised data file a run reads, keyed `<family>/<split>.jsonl`."""
    out = {}
    for spec in specs:
        if isinstance(spec, dict):
            for path in spec["dataset_kwargs"]["data_files"].values():
                out[f"{Path(path).parent.name}/{Path(path).name}"] = sha256_file(path)
    return dict(sorted(out.items()))


def used_sources(data_dir: str | Path, specs: list[str | dict[str, Any]]) -> dict[str, Any]:
    """The upstream files (name, JGLUE release, sha256) behind the data a run reads."""
    prov = read_provenance(data_dir)
    out: dict[str, Any] = {}
    for spec in specs:
        if isinstance(spec, dict):
            for split, path in spec["dataset_kwargs"]["data_files"].items():
                family = Path(path).parent.name
                out.setdefault(family, {})[split] = prov[family][split]
    return out


def cache_key(
    hf: dict[str, Any],
    tasks: list[dict[str, Any]],
    data_dir: str | Path,
    tasks_dir: Path,
    settings: dict[str, Any],
) -> str:
    """Content hash of everything an evaluation's numbers depend on: the model's content identity
    (`jaflow.provenance.model_identity`), the data files' sha256, the resolved tasks with their YAMLs,
    the settings and the code versions; never a model name or path."""
    import lm_eval

    from jaflow.provenance import digest, model_identity

    names = [resolve_task(t) for t in tasks]
    specs = [task_spec(t, data_dir, tasks_dir) for t in tasks]
    key = {
        "model": model_identity(hf)["sha256"],
        "loading": {k: hf[k] for k in ("use_fast", "trust_remote_code", "dtype")},
        "tasks": [{k: v for k, v in t.items() if k != "metric"} for t in tasks],
        "resolved": names,
        "data": data_hashes(specs),
        "yamls": {n: sha256_file(tasks_dir / f"{n}.yaml") for n in names if n in TEMPLATES},
        "code": sha256_file(Path(__file__).with_name("model.py")),
        "settings": settings,
        "lm_eval": lm_eval.__version__,
    }
    return digest(key)


def _copy_cached(src: Path, out_dir: Path, model: str, suite: str) -> list[dict[str, Any]]:
    with open(src / "scores.csv", newline="", encoding="utf-8") as f:
        rows = [dict(r, model=model, suite=suite) for r in csv.DictReader(f)]
    for p in sorted(src.glob("*")):
        if p.name != "scores.csv":
            with atomic_path(out_dir / p.name) as tmp:
                shutil.copyfile(p, tmp)
    write_scores(out_dir / "scores.csv", rows)
    return rows


def evaluate_suite(
    *,
    model: str,
    hf: dict[str, Any],
    tasks: list[dict[str, Any]],
    data_dir: str | Path,
    out_dir: str | Path,
    suite: str,
    harness: str,
    seed: int,
    limit: int | None = None,
    batch_size: int | str = 1,
    loglikelihood_batch_size: int = 1,
    max_length: int | None = None,
    device: str | None = None,
    tasks_dir: Path = TASKS_DIR,
    cache_dir: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Evaluate `tasks` (suite entries) on one model; write results.json (byte-reproducible),
    run_info.json (host and timing), samples and scores.csv."""
    out_dir = Path(out_dir)
    run = dict(
        model=model,
        hf=hf,
        tasks=tasks,
        data_dir=data_dir,
        out_dir=out_dir,
        suite=suite,
        harness=harness,
        seed=seed,
        limit=limit,
        batch_size=batch_size,
        loglikelihood_batch_size=loglikelihood_batch_size,
        max_length=max_length,
        device=device,
        tasks_dir=tasks_dir,
    )
    if cache_dir:
        settings = {
            "seed": seed,
            "limit": limit,
            "harness": harness,
            "batch_size": batch_size,
            "loglikelihood_batch_size": loglikelihood_batch_size,
            "max_length": max_length,
        }
        cached = Path(cache_dir).expanduser() / cache_key(hf, tasks, data_dir, tasks_dir, settings)
        if (cached / "scores.csv").is_file():
            log.info("jglue: %s: reusing the cached evaluation %s", model, cached)
            return _copy_cached(cached, out_dir, model, suite)
        rows = evaluate_suite(**run)
        with atomic_path(cached) as tmp:
            shutil.copytree(out_dir, tmp)
        log.info("jglue: %s: stored in the evaluation cache %s", model, cached)
        return rows
    import lm_eval
    from lm_eval.tasks import TaskManager

    from jaflow.provenance import model_identity

    specs = [task_spec(t, data_dir, tasks_dir) for t in tasks]
    entries = {resolve_task(t): t for t in tasks}
    harnesses = {name: entry_harness(t, harness) for name, t in entries.items()}
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    meta = {
        "pretrained": hf["pretrained"],
        "tokenizer": hf["tokenizer"] or hf["pretrained"],
        "use_fast": hf["use_fast"],
        "trust_remote_code": hf["trust_remote_code"],
    }
    manager = TaskManager(include_path=str(tasks_dir), include_defaults=False, metadata=dict(meta))
    if any(isinstance(s, str) and s not in manager.all_tasks for s in specs):
        # lm-eval's own catalogue (most of a minute to index), only when a suite names one of its tasks
        manager = TaskManager(include_path=str(tasks_dir), metadata=dict(meta))
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
    lm = build_model(
        hf,
        {n: h for n, h in harnesses.items() if entries[n].get("harness")},
        harness,
        batch_size=batch_size,
        loglikelihood_batch_size=loglikelihood_batch_size,
        max_length=max_length,
        device=device,
    )
    fewshot = {t["task"]: t.get("num_fewshot") for t in tasks}
    log.info(
        "jglue: %s on %s (harness %s, batch size %s, log-likelihood batch %s, seed %s, limit %s): %s",
        list(entries),
        model,
        harnesses,
        batch_size,
        loglikelihood_batch_size,
        seed,
        limit,
        fewshot,
    )
    out = lm_eval.simple_evaluate(
        model=lm,
        tasks=loaded,
        task_manager=manager,
        batch_size=batch_size,
        device=device,
        limit=limit,
        log_samples=True,
        random_seed=seed,
        numpy_random_seed=seed,
        torch_random_seed=seed,
        fewshot_random_seed=seed,
        bootstrap_iters=1000,
    )
    samples = out.pop("samples", {})
    host = {k: out.pop(k) for k in HOST_FIELDS if k in out}
    # content only (no model or suite name: scores.csv carries those), so a cached copy is byte-identical
    out["jaflow"] = {
        "model_identity": model_identity(hf),
        "loading": {k: hf[k] for k in ("use_fast", "trust_remote_code", "dtype")},
        "harness": harnesses,
        "batch_size": batch_size,
        "loglikelihood_batch_size": loglikelihood_batch_size,
        "seed": seed,
        "limit": limit,
        "max_length": max_length,
        "suite_tasks": tasks,
        "data_sha256": data_hashes(specs),
        "data_sources": used_sources(data_dir, specs),
    }
    roots = {
        str(Path(data_dir).resolve()): "<data>",
        str(Path(tasks_dir).resolve()): "<tasks>",
        str(Path.cwd().resolve()): ".",
    }
    rows = tidy_scores(model, suite, out, entries, harnesses)
    for task, docs in samples.items():
        with atomic_path(out_dir / f"samples_{task}.jsonl") as tmp:
            tmp.write_text(
                "".join(
                    json.dumps(reproducible(d, roots), ensure_ascii=False) + "\n" for d in docs
                ),
                encoding="utf-8",
            )
    write_json(out_dir / "results.json", reproducible(out, roots))
    write_json(out_dir / "run_info.json", reproducible(host, roots))
    write_scores(out_dir / "scores.csv", rows)
    return rows
