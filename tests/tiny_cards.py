"""The tiny swap of a card config, for tests: `tinyify(config, base_dirs, data_dir)`.

It turns a card's config into one that runs offline on CPU in seconds with the same structure:
the same model graph (bases, training runs, merges), the same dataset mixes with the same
sources, columns, templates and sampling rules, the same evaluation runs and reports. Only the
parts change: hub models become tiny local models, hub and local dataset sources become small
generated files with the columns the config reads, counts and steps shrink, and evaluations
read the tiny world's benchmark files (`tiny`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jaflow.data.marc_ja import write_tiny_reviews
from jaflow.data.sources import template_fields
from jaflow.evaluate.jglue.data import SOURCE_FILES
from jaflow.graph import is_local_path
from jaflow.io import write_jsonl

# Architectures of the cards' hub models (tiny stand-ins keep the family: GPT-NeoX for rinna
# and weblab, Llama for OpenOrca and Swallow).
TINY_ARCH_BY_PREFIX = {
    "rinna/": "gpt_neox",
    "matsuo-lab/weblab": "gpt_neox",
    "mistralai/": "mistral",
}

# JGLUE families the tiny world writes (jaflow.tiny.jglue.write_tiny_jglue: every family of
# SOURCE_FILES); other tasks of a suite (lm-eval's English ones) are dropped from the tiny run,
# and a suite left empty evaluates marc_ja instead.
TINY_JGLUE_TASKS = tuple(SOURCE_FILES)

TINY_ROWS = 16  # rows of each generated source file
TINY_TRAIN = {
    "max_steps": 4,
    "eval_steps": 2,
    "logging_steps": 1,
    "per_device_train_batch_size": 4,
    "per_device_eval_batch_size": 4,
    "gradient_accumulation_steps": 1,
    "max_length": 128,
    "compute_dtype": "auto",
    "precision": "auto",
    "report_to": [],
}

_PHRASES = (
    "今日は晴れて空がとても青いです",
    "駅の近くに新しい本屋ができました",
    "猫が窓のそばで静かに眠っています",
    "この料理は甘くてとてもおいしいです",
    "明日の会議は午後三時から始まります",
    "山の上から海がよく見えました",
    "図書館で歴史の本を二冊借りました",
    "友だちと公園で長く話しました",
)


def tiny_arch(pretrained: str) -> str:
    """The tiny architecture standing in for a hub model (Llama unless known otherwise)."""
    for prefix, arch in TINY_ARCH_BY_PREFIX.items():
        if pretrained.startswith(prefix):
            return arch
    return "llama"


def base_models(config: Mapping[str, Any]) -> dict[str, str]:
    """Base models of the config's graph: name -> hub id or path."""
    return {
        n: m["pretrained"] for n, m in (config.get("models") or {}).items() if "pretrained" in m
    }


def _text(i: int, min_chars: int = 12) -> str:
    text = _PHRASES[i % len(_PHRASES)] + "。"
    while len(text) < min_chars:
        text += _PHRASES[(i + len(text)) % len(_PHRASES)] + "。"
    return text


def tiny_source_rows(
    source: Mapping[str, Any], dataset_template: Any, n: int = TINY_ROWS
) -> list[dict[str, Any]]:
    """Rows with every column a source's config reads, in values its rules keep."""
    columns: Mapping[str, str] = source.get("columns") or {}
    template = source.get("template", dataset_template)
    fields = set(template_fields(template))
    min_k = 0
    group_cols: set[str] = set()
    for rule in source.get("rules") or []:
        if "min_chars" in rule:
            min_k = max(min_k, int(rule["min_chars"].get("k", 0)))
            fields |= set(rule["min_chars"].get("fields", ["instruction", "output"]))
        if "max_per_value" in rule:
            group_cols.add(rule["max_per_value"]["column"])
        if "dedup" in rule:
            fields |= set(rule["dedup"].get("fields", ["instruction", "input", "output"]))
    conv = source.get("conversations")
    conv_format = source.get("conversation_format", "messages")
    nested = _nested_fields(template)
    rows = []
    for i in range(n):
        row: dict[str, Any] = {"id": f"tiny-{i}"}
        if conv:
            system, user, reply = _text(i + 5), _text(i, min_k + 1), _text(i + 3, min_k + 1)
            if (
                conv_format == "zephyr"
            ):  # seed 004's roleplay: system, user, assistant, a trailing user turn
                row[conv] = (
                    f"<|system|>{system}</s>\n<|user|>{user}</s>\n<|assistant|>{reply}</s>\n<|user|>{_text(i + 1)}</s>"
                )
            elif conv_format == "chatml":
                row[conv] = (
                    f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
                    f"<|im_start|>assistant\n{reply}<|im_end|>\n"
                )
            else:
                row[conv] = [
                    {"role": "user", "content": user},
                    {"role": "assistant", "content": reply},
                ]
        else:
            for f in sorted(fields):
                col = columns.get(f, f)
                row[col] = "" if f == "input" and i % 2 else _text(i + len(f), min_k + 1)
                if f in nested:  # e.g. TyDi GoldP's answers{text, start_byte}: "{answers[text][0]}"
                    row[col] = {key: [_text(i + len(f))] for key in nested[f]}
        for col in group_cols:
            row[col] = f"group{i % 3}"
        rows.append(row)
    return rows


def _nested_fields(template: Any) -> dict[str, set[str]]:
    """Fields a custom template indexes by key (`{answers[text][0]}` -> {answers: {text}})."""
    import re
    import string

    out: dict[str, set[str]] = {}
    if isinstance(template, Mapping):
        for part in template.values():
            for _, name, _, _ in string.Formatter().parse(part):
                m = re.match(r"^(\w+)\[(\w+)\]", name or "")
                if m:
                    out.setdefault(m.group(1), set()).add(m.group(2))
    return out


def _shrink_rules(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for rule in rules:
        rule = copy.deepcopy(rule)
        if "random" in rule:
            rule["random"] = min(rule["random"], 8)
        if "head" in rule:
            rule["head"] = min(rule["head"], 8)
        if "max_per_value" in rule:
            rule["max_per_value"]["n"] = min(rule["max_per_value"]["n"], 4)
        out.append(rule)
    return out


def _tiny_datasets(datasets: dict[str, Any], data_dir: Path) -> None:
    for name, mix in datasets.items():
        for source in mix["sources"]:
            path = data_dir / f"{name}__{source['name']}.jsonl"
            write_jsonl(path, tiny_source_rows(source, mix.get("template", "alpaca_ja")))
            for key in ("hub", "hub_config", "split", "revision", "data_dir"):
                source.pop(key, None)
            source["path"] = str(path)
            source["format"] = "jsonl"
            source["rules"] = _shrink_rules(source.get("rules") or [{"all": True}])
        if mix.get("equal_per_source"):
            mix["equal_per_source"] = min(mix["equal_per_source"], 6)
        if mix.get("total"):
            mix["total"] = min(mix["total"], 6 * len(mix["sources"]))
        mix["validation"] = {"size": 4}


def _tiny_models(models: dict[str, Any], base_dirs: Mapping[str, str]) -> None:
    for name, spec in models.items():
        if "pretrained" in spec:
            if name not in base_dirs:
                raise KeyError(f"tinyify: no tiny model given for base model '{name}'")
            spec["pretrained"] = str(base_dirs[name])
            for key in (
                "tokenizer",
                "revision",
                "md5",
                "sha256",
            ):  # the hub model's, not the tiny one's
                spec.pop(key, None)
            spec["use_fast"] = True  # the tiny tokenizer is a fast (tokenizers) one
            spec["trust_remote_code"] = False
            spec["dtype"] = "float32"
        elif "experts" in spec:
            spec["dtype"] = "float32"
        elif "from" in spec:
            train = spec.setdefault("train", {})
            epochs = train.get("max_steps", 1000) == -1
            train.update(TINY_TRAIN)
            # one CPU process: the card's GPU layout and global batch (seeds 003/004) stay out
            train.pop("distributed", None)
            train.pop("global_batch_size", None)
            if epochs:  # keep epoch-based runs epoch-based, over the tiny mix
                train["max_steps"] = -1
                train["num_train_epochs"] = min(float(train.get("num_train_epochs", 1)), 2)
            if spec.get("method") == "lisa":
                train["lisa_layers"] = min(int(train.get("lisa_layers", 2)), 2)
                train["lisa_interval"] = min(int(train.get("lisa_interval", 20)), 2)


STAND_IN_TASK = {"task": "marc_ja", "version": "1.1", "num_fewshot": 0, "metric": "acc"}


SHIPPED_INSTEAD = {"jaqket_v2": "0.2"}


def _tiny_suite(tasks: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The suite's tasks the tiny world has (few-shot capped); None when it has none of them."""
    from jaflow.evaluate.jglue.run import UNSHIPPED

    out = []
    for t in tasks:
        if t["task"] in TINY_JGLUE_TASKS:
            t = dict(t)
            # a version jaflow cannot ship (seeds 001/002's jaqket_v2 0.1) fails the real run at
            # its JGLUE job, naming why; the tiny run evaluates the closest shipped version
            if (t["task"], t.get("version")) in UNSHIPPED:
                t["version"] = SHIPPED_INSTEAD[t["task"]]
            if t.get("num_fewshot"):
                t["num_fewshot"] = min(int(t["num_fewshot"]), 2)
            out.append(t)
    return out or None


def _tiny_jglue(jglue: dict[str, Any], data_dir: Path) -> set[str]:
    """Shrink the suites the runs use; returns the suites replaced by the stand-in task.
    A MARC-ja rebuild (jglue.marc_ja) gets the miniature Amazon reviews file and lists."""
    from jaflow.evaluate.jglue.suites import BUILTIN_SUITES

    suites = jglue.setdefault("suites", {})
    stand_ins = set()
    for run in jglue.get("runs") or []:
        name = run["suite"]
        tasks = suites.get(name) or BUILTIN_SUITES.get(name)
        if tasks is not None and name not in stand_ins:
            tiny = _tiny_suite([dict(t) for t in tasks])
            if tiny is None:  # e.g. seed 002's English Open LLM suite: no tiny data
                stand_ins.add(name)
                tiny = [dict(STAND_IN_TASK)]
            suites[name] = tiny
    jglue["data_dir"] = "tiny"
    jglue["urls"] = {}
    if jglue.get("marc_ja"):
        jglue["marc_ja"] = write_tiny_reviews(data_dir / "marc_ja", n=120)
    jglue["limit"] = 8
    jglue["max_length"] = None
    return stand_ins


def _tiny_reports(reports: dict[str, Any], stand_ins: set[str]) -> None:
    """Tables of a stand-in suite show the stand-in task (their published columns are gone)."""
    for report in reports.values():
        for table in report.get("tables") or []:
            if table.get("source", "jglue") == "jglue" and table.get("suite") in stand_ins:
                label = f"{STAND_IN_TASK['task']} (tiny stand-in)"
                table["columns"] = [
                    {
                        "task": STAND_IN_TASK["task"],
                        "metric": STAND_IN_TASK["metric"],
                        "label": label,
                    }
                ]
                table.pop("published", None)
                for avg in table.get("averages") or []:
                    avg.pop("over", None)


def _tiny_mtbench(mtbench: dict[str, Any], judge_model: str | None) -> None:
    mtbench["questions"] = "tiny"
    for key in ("reference_answers", "judge_prompts"):
        mtbench[key] = None
    mtbench["ref_categories"] = []
    mtbench["max_new_tokens"] = 8
    mtbench["batch_size"] = 4
    mtbench["num_choices"] = 1
    if mtbench.get("models"):
        if judge_model is None:
            raise KeyError("tinyify: MT-Bench needs a tiny judge model")
        # a random tiny judge rates (almost) nothing: the tiny run checks wiring, not ratings
        mtbench["judge"] = {
            "backend": "hf",
            "model": judge_model,
            "max_new_tokens": 8,
            "max_failures": 1_000_000,
        }


def tinyify(
    config: Mapping[str, Any], base_dirs: Mapping[str, str], data_dir: str | Path
) -> dict[str, Any]:
    """A copy of `config` with the same structure and tiny parts (see the module docstring).

    `base_dirs` maps each base model of the graph to a tiny local model directory;
    generated dataset files are written under `data_dir`. The first base model judges MT-Bench.
    """
    tiny = copy.deepcopy(dict(config))
    _tiny_models(tiny.get("models") or {}, base_dirs)
    _tiny_datasets(tiny.get("datasets") or {}, Path(data_dir))
    if tiny.get("jglue"):
        _tiny_reports(tiny.get("reports") or {}, _tiny_jglue(tiny["jglue"], Path(data_dir)))
    if tiny.get("mtbench"):
        bases = list(base_models(config))
        _tiny_mtbench(tiny["mtbench"], bases[0] if bases else None)
    return tiny


def hub_references(config: Any, where: str = "") -> list[str]:
    """Every string in the config that names a hub model or dataset ("org/name", not a path)."""
    found: list[str] = []
    if isinstance(config, Mapping):
        for k, v in config.items():
            key = f"{where}.{k}" if where else str(k)
            if (
                k in ("pretrained", "tokenizer", "hub")
                and isinstance(v, str)
                and not is_local_path(v)
            ):
                found.append(f"{key}: {v}")
            else:
                found += hub_references(v, key)
    elif isinstance(config, list):
        for i, v in enumerate(config):
            found += hub_references(v, f"{where}[{i}]")
    return found
