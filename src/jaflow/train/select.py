"""Checkpoint selection: pick the best checkpoint by eval loss (from the trainer state's log
history) or by a downstream lm-eval metric computed on each checkpoint, then write it to
`results/models/<name>/` as a peft adapter, or as full weights (adapter merged onto a bf16/fp32
copy of the base, never the 4-bit one), always with the tokenizer, `selection.json` and
`checksums.sha256`.

Selection by eval_loss of an adapter imports neither torch nor transformers: the checkpoint's
files (and the tokenizer the Trainer saved with it) are copied. Merging an adapter and scoring
with lm-eval load what they need where they need it.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jaflow.config.schema import filled
from jaflow.errors import ConfigError, DataError
from jaflow.io import WEIGHT_SUFFIXES, atomic_path, write_checksums, write_json
from jaflow.train import resume

log = logging.getLogger(__name__)

MODEL_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "model.safetensors.index.json",
)
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")
# what `PreTrainedTokenizerBase.save_pretrained` writes (the Trainer saves it in every checkpoint)
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
)


def has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@dataclass
class Candidate:
    step: int
    value: float | None
    checkpoint: Path | None  # None when save_total_limit removed it

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.step, "value": self.value, "kept": self.checkpoint is not None}


def eval_loss_candidates(
    log_history: list[dict[str, Any]], checkpoints_dir: str | Path
) -> list[Candidate]:
    kept = {resume.checkpoint_step(p): p for p in resume.complete_checkpoints(checkpoints_dir)}
    seen: dict[int, float] = {}
    for entry in log_history:
        if "eval_loss" in entry and "step" in entry:
            seen[int(entry["step"])] = float(entry["eval_loss"])
    return [Candidate(s, v, kept.get(s)) for s, v in sorted(seen.items())]


def downstream_candidates(
    checkpoints_dir: str | Path, score: Callable[[Path], float]
) -> list[Candidate]:
    """Score every complete checkpoint with `score(checkpoint_dir) -> float`."""
    out = []
    for ckpt in resume.complete_checkpoints(checkpoints_dir):
        value = float(score(ckpt))
        log.info("%s: %s", ckpt.name, value)
        out.append(Candidate(resume.checkpoint_step(ckpt), value, ckpt))
    return out


def pick(candidates: list[Candidate], mode: str) -> Candidate:
    """Best kept candidate; ties go to the earliest step. NaN never wins."""
    usable = [
        c
        for c in candidates
        if c.checkpoint is not None and c.value is not None and not math.isnan(c.value)
    ]
    if not usable:
        raise DataError("no kept checkpoint has a metric value to select by")
    sign = 1 if mode == "min" else -1
    return min(usable, key=lambda c: (sign * c.value, c.step))


def is_adapter_checkpoint(ckpt: Path) -> bool:
    return (ckpt / "adapter_config.json").is_file()


def lm_eval_model_args(model_args: dict[str, Any], ckpt: Path) -> dict[str, Any]:
    """lm-eval HF model arguments for a checkpoint: base + peft for adapters, else the checkpoint."""
    adapter = is_adapter_checkpoint(ckpt)
    args = {
        "pretrained": model_args["pretrained"] if adapter else str(ckpt),
        "tokenizer": model_args["tokenizer"] or model_args["pretrained"],
        "use_fast_tokenizer": model_args["use_fast"],
        "trust_remote_code": model_args["trust_remote_code"],
        "dtype": "float32" if not has_cuda() else "bfloat16",
        "device": "cuda" if has_cuda() else "cpu",
    }
    if adapter:
        args["peft"] = str(ckpt)
    return args


def parse_metric(metric: str) -> tuple[str, str]:
    """'jglue:<task>:<metric>' or 'lm_eval:<task>:<metric>' -> (task, metric)."""
    parts = metric.split(":")
    if len(parts) != 3 or parts[0] not in ("jglue", "lm_eval") or not all(parts):
        raise ConfigError(
            f"select.metric: '{metric}' is not eval_loss, 'jglue:<task>:<metric>' or 'lm_eval:<task>:<metric>'"
        )
    return parts[1], parts[2]


def lm_eval_scorer(
    metric: str, model_args: dict[str, Any], select: dict[str, Any]
) -> Callable[[Path], float]:
    """A score function running lm-eval's `simple_evaluate` on one checkpoint."""
    select = filled("select", select, "select")
    task, name = parse_metric(metric)
    key = name if "," in name else f"{name},none"

    managers: list[Any] = []  # indexing lm-eval's task tree is slow: once per scorer

    def score(ckpt: Path) -> float:
        from lm_eval import simple_evaluate
        from lm_eval.tasks import TaskManager

        if not managers:
            include = select["include_path"]
            managers.append(TaskManager(include_path=str(include) if include else None))
        out = simple_evaluate(
            model="hf",
            model_args=lm_eval_model_args(model_args, ckpt),
            tasks=[task],
            num_fewshot=select["num_fewshot"],
            limit=select["limit"],
            batch_size=select["batch_size"],
            task_manager=managers[0],
            log_samples=False,
            random_seed=0,
            numpy_random_seed=1234,
            torch_random_seed=1234,
            fewshot_random_seed=1234,
        )
        results = out["results"].get(task, {})
        if key not in results:
            raise ConfigError(
                f"select.metric: task '{task}' reports no '{key}' (has {sorted(results)})"
            )
        return float(results[key])

    return score


def export_model(
    ckpt: Path, out_dir: Path, model_args: dict[str, Any], merge_adapter: bool
) -> dict[str, bool]:
    """Write the selected checkpoint as an HF directory; returns {"adapter", "merged"}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    adapter = is_adapter_checkpoint(ckpt)
    if adapter and merge_adapter:
        merge_adapter_into_base(ckpt, model_args, out_dir)
    else:
        names = ADAPTER_FILES if adapter else MODEL_FILES
        files = [ckpt / n for n in names if (ckpt / n).is_file()]
        index = ckpt / "model.safetensors.index.json"
        if index.is_file():
            files += [
                ckpt / s for s in sorted(set(json.loads(index.read_text())["weight_map"].values()))
            ]
        for f in files:
            shutil.copy2(f, out_dir / f.name)
        if adapter:
            sort_target_modules(out_dir / "adapter_config.json")
    save_tokenizer(ckpt, out_dir, model_args)
    return {"adapter": adapter and not merge_adapter, "merged": adapter and merge_adapter}


def sort_target_modules(config_path: Path) -> None:
    """peft keeps target_modules as a set and saves it in hash order, which differs between
    processes: sorted, the same run gives the same adapter_config.json (and checksums)."""
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
        config_path.write_text(
            json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )


def save_tokenizer(ckpt: Path, out_dir: Path, model_args: dict[str, Any]) -> None:
    """The tokenizer the Trainer saved with the checkpoint (the run's own), else loaded and saved."""
    saved = [ckpt / n for n in TOKENIZER_FILES if (ckpt / n).is_file()]
    if (ckpt / "tokenizer_config.json").is_file():
        for f in saved:
            shutil.copy2(f, out_dir / f.name)
        return
    from jaflow.hf import load_tokenizer

    load_tokenizer(model_args).save_pretrained(out_dir)


def merge_adapter_into_base(ckpt: Path, model_args: dict[str, Any], out_dir: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    dtype = model_args["dtype"]
    dtype = torch.float32 if dtype == "auto" and not has_cuda() else dtype
    base = AutoModelForCausalLM.from_pretrained(
        model_args["pretrained"],
        dtype=dtype,
        trust_remote_code=model_args["trust_remote_code"],
        revision=model_args.get("revision"),
    )
    merged = PeftModel.from_pretrained(base, str(ckpt)).merge_and_unload()
    merged.save_pretrained(out_dir)


def select_checkpoint(
    *,
    state_path: str | Path,
    checkpoints_dir: str | Path,
    out_dir: str | Path,
    model_args: dict[str, Any],
    select: dict[str, Any],
    merge_adapter: bool,
    score: Callable[[Path], float] | None = None,
) -> dict[str, Any]:
    """Pick the best checkpoint and write `out_dir` (atomically) with `selection.json`."""
    select = filled("select", select, "select")
    metric, mode = select["metric"], select["mode"]
    if metric == "eval_loss":
        state = json.loads(Path(state_path).read_text(encoding="utf-8"))
        candidates = eval_loss_candidates(state["log_history"], checkpoints_dir)
        reason = (
            "lowest eval_loss on the validation split" if mode == "min" else "highest eval_loss"
        )
    else:
        score = score or lm_eval_scorer(metric, model_args, select)
        candidates = downstream_candidates(checkpoints_dir, score)
        reason = f"{'lowest' if mode == 'min' else 'highest'} {metric} computed with lm-eval on each checkpoint"
    best = pick(candidates, mode)
    log.info("selected step %d (%s = %s)", best.step, metric, best.value)
    with atomic_path(out_dir) as tmp:
        flags = export_model(best.checkpoint, tmp, model_args, merge_adapter)
        write_checksums(tmp, WEIGHT_SUFFIXES)
        selection = {
            "step": best.step,
            "metric": metric,
            "value": best.value,
            "mode": mode,
            "checkpoint": str(best.checkpoint),
            "reason": reason,
            "candidates": [c.as_dict() for c in candidates],
            **flags,
        }
        write_json(tmp / "selection.json", selection)
    return selection
