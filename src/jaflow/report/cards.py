"""Model cards: README.md with model-index YAML front matter, in the style of the seed cards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from jaflow import io
from jaflow.evaluate.mtbench.categories import AVG_ROW  # the stage's mean row; cards recompute it
from jaflow.graph import BaseModel, MergedModel, ModelGraph, TrainedModel
from jaflow.io import sha256_file

# Cards also describe model dirs jaflow did not write, so they know more weight formats.
WEIGHT_SUFFIXES = io.WEIGHT_SUFFIXES + (".pt", ".pth", ".gguf")
METHOD_NAMES = {"qlora": "QLoRA", "lora": "LoRA", "full": "Full", "lisa": "LISA"}
# hyper-parameters that only mean something for some methods
METHOD_KEYS = {
    "lora_": ("qlora", "lora"),
    "target_modules": ("qlora", "lora"),
    "bits": ("qlora",),
    "quant_type": ("qlora",),
    "double_quant": ("qlora",),
    "compute_dtype": ("qlora",),
    "lisa_": ("lisa",),
}


def method_hparams(method: str, train: dict[str, Any]) -> dict[str, Any]:
    """The training settings that apply to `method` (a LISA run has no LoRA rank)."""

    def applies(key: str) -> bool:
        return all(
            method in methods for prefix, methods in METHOD_KEYS.items() if key.startswith(prefix)
        )

    return {k: v for k, v in train.items() if applies(k) and v is not None}


def model_facts(
    graph: ModelGraph, config: dict[str, Any], names: list[str]
) -> dict[str, dict[str, Any]]:
    """What a card says about each trained or merged model, from the config and graph (JSON-safe)."""
    facts: dict[str, dict[str, Any]] = {}
    for name in names:
        if name not in graph.nodes:
            continue
        node = graph[name]
        # root models: the pretrained checkpoints every lineage of this model starts from
        bases = sorted(
            {graph[a].pretrained for a in graph.ancestors(name) if isinstance(graph[a], BaseModel)}
        )
        if isinstance(node, TrainedModel):
            parent = graph[node.parent]
            # a card's base model is the one it was trained from: a pretrained checkpoint, or the
            # model of this graph that the workflow built (a merge, another training run)
            base = [parent.pretrained] if isinstance(parent, BaseModel) else [node.parent]
            ds = config["datasets"].get(node.dataset, {})
            facts[name] = {
                "kind": "trained",
                "from": node.parent,
                "base_models": base,
                "root_models": bases,
                "method": node.method,
                "dataset": node.dataset,
                "template": ds.get("template"),
                "sources": [
                    {k: s[k] for k in ("name", "hub", "path") if k in s}
                    for s in ds.get("sources", [])
                ],
                "train": dict(node.train),
                "select": dict(node.select),
                "chat_format": graph.chat_format(name),
                "adapter": graph.is_adapter(name),
            }
        elif isinstance(node, MergedModel):
            facts[name] = {
                "kind": "merged",
                "base": node.base,
                "experts": list(node.expert_names),
                "base_models": bases,
                "gate_mode": node.gate_mode,
                "experts_per_token": node.experts_per_token,
                "dtype": node.dtype,
                "chat_format": graph.chat_format(name),
            }
    return facts


def weight_checksums(model_dir: str | Path) -> dict[str, str]:
    """sha256 of the weight files: from `checksums.sha256` (sha256sum format) when present, else computed."""
    model_dir = Path(model_dir)
    if (model_dir / io.CHECKSUMS).exists():
        out = io.read_checksums(model_dir)
        return dict(
            sorted((k, v) for k, v in out.items() if k.endswith(WEIGHT_SUFFIXES))
            or sorted(out.items())
        )
    files = sorted(
        p for p in model_dir.rglob("*") if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES)
    )
    return {p.relative_to(model_dir).as_posix(): sha256_file(p) for p in files}


def manifest_counts(manifest: dict[str, Any]) -> list[tuple[str, int | None, int | None]]:
    """(source, rows read, rows used) from a dataset manifest (`sources[]` and `counts.per_source`)."""
    per_source = (manifest.get("counts") or {}).get("per_source") or {}
    out = []
    for s in manifest.get("sources", []):
        name = str(s.get("name", "?"))
        used = per_source.get(name, s.get("rows_used"))
        out.append((name, s.get("rows_read"), used))
    known = {name for name, _, _ in out}
    out += [(name, None, n) for name, n in per_source.items() if name not in known]
    return out


def model_index(
    name: str, jglue: pd.DataFrame, mtbench: pd.DataFrame, turn: str = "1"
) -> list[dict[str, Any]]:
    """The `model-index` block (Hugging Face card metadata) with every score of this model."""
    results = []
    for _, r in jglue[jglue["model"] == name].iterrows():
        label = "-".join(
            str(x)
            for x in (r["task"], r["task_version"], r["template"])
            if str(x) not in ("", "nan")
        )
        args = {} if pd.isna(r["num_fewshot"]) else {"num_few_shot": int(r["num_fewshot"])}
        results.append(
            {
                "task": {"type": "text-generation", "name": "Text Generation"},
                "dataset": {
                    "name": f"JGLUE {label}",
                    "type": str(r["task"]),
                    "split": "validation",
                    **({"args": args} if args else {}),
                },
                "metrics": [
                    {"type": str(r["metric"]), "value": float(r["value"]), "name": str(r["metric"])}
                ],
                "source": {
                    "name": "jaflow",
                    "url": "https://github.com/Stability-AI/lm-evaluation-harness",
                },
            }
        )
    mt = mtbench[
        (mtbench["model"] == name)
        & (mtbench["turn"] == turn)
        & (mtbench["category"] != AVG_ROW)
        & mtbench["score"].notna()
    ]
    if not mt.empty:
        metrics = [
            {"type": c, "value": float(s), "name": c}
            for c, s in zip(mt["category"], mt["score"], strict=True)
        ]
        metrics.append(
            {"type": "avg_score", "value": float(mt["score"].mean()), "name": "avg_score"}
        )
        results.append(
            {
                "task": {"type": "text-generation", "name": "Text Generation"},
                "dataset": {
                    "name": f"Japanese MT-Bench (turn {turn})",
                    "type": "japanese_mt_bench",
                },
                "metrics": metrics,
                "source": {
                    "name": "jaflow",
                    "url": "https://github.com/Stability-AI/FastChat/tree/jp-stable/fastchat/llm_judge",
                },
            }
        )
    return [{"name": name, "results": results}]


def _prompt_example(template: Any) -> str | None:
    if template is None:
        return None
    from jaflow.data.templates import get_template

    try:
        return (
            get_template(template)
            .render({"instruction": "{instruction}", "input": "", "output": ""})
            .prompt
        )
    except Exception:  # a custom template may need fields we do not know; the card then omits it
        return None


def _metric(value: Any) -> str:
    """A loss or score as a person reads it: four significant digits (1.6702, 0.0123)."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def render_card(
    name: str,
    facts: dict[str, Any],
    *,
    jglue: pd.DataFrame,
    mtbench: pd.DataFrame,
    tables: list[str],
    radar: str | None,
    checksums: dict[str, str],
    manifest: dict[str, Any] | None,
    selection: dict[str, Any] | None,
    merge: dict[str, Any] | None,
    turn: str = "1",
) -> str:
    """The README.md text of one model card."""
    hub_sets = [s["hub"] for s in facts.get("sources", []) if "hub" in s]
    meta: dict[str, Any] = {
        "base_model": facts.get("base_models", []),
        "library_name": "peft" if facts.get("adapter") else "transformers",
        "tags": ["jaflow", facts.get("method") or "merge"]
        + (["moe"] if facts["kind"] == "merged" else []),
        **({"datasets": hub_sets} if hub_sets else {}),
        "language": ["ja"],
    }
    index = model_index(name, jglue, mtbench, turn)
    if index[0]["results"]:  # an unevaluated model gets no model-index rather than an empty one
        meta["model-index"] = index
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False)
    out = [f"---\n{front}---\n", f"# {name}\n"]
    if facts["kind"] == "trained":
        method = METHOD_NAMES.get(facts["method"], facts["method"])
        roots = facts.get("root_models") or []
        lineage = (
            f", built from {', '.join(f'`{b}`' for b in roots)}"
            if roots and roots != facts["base_models"]
            else ""
        )
        out.append(
            f"{method} fine-tune of `{facts['from']}` "
            f"(base: {', '.join(f'`{b}`' for b in facts['base_models'])}{lineage}) on the dataset mix "
            f"`{facts['dataset']}`.\n"
        )
        out.append("## Datasets\n")
        counts = manifest_counts(manifest or {})
        if counts:
            cell = lambda n: "-" if n is None else str(n)  # noqa: E731
            out += ["| source | rows read | rows used |", "|---|---|---|"]
            out += [f"| {s} | {cell(r)} | {cell(u)} |" for s, r, u in counts]
            totals = (manifest or {}).get("counts") or {}
            split = ", ".join(f"{totals[k]} {k}" for k in ("train", "validation") if k in totals)
            total = totals.get("total", sum(u for _, _, u in counts if u is not None))
            seed = (manifest or {}).get("seed")
            out.append(
                f"\nTotal: {total} rows"
                + (f" ({split})" if split else "")
                + (f", sampled with seed {seed}" if seed is not None else "")
                + ".\n"
            )
        else:
            out += [
                f"- {s.get('hub') or s.get('path') or s['name']}" for s in facts.get("sources", [])
            ] + [""]
        out.append("## Prompt format\n")
        example = _prompt_example(facts.get("template"))
        out.append(
            f"Template `{facts.get('template')}`"
            + (":\n\n```\n" + example + "\n```\n" if example else ".\n")
        )
        out.append("## Training\n")
        out += [f"- {k}: {v}" for k, v in method_hparams(facts["method"], facts["train"]).items()]
        if selection:
            out.append(
                f"\nSelected checkpoint: step {selection.get('step')} "
                f"({selection.get('metric')} = {_metric(selection.get('value'))}, "
                f"mode {selection.get('mode', 'min')}).\n"
            )
        else:
            out.append("")
    else:
        out.append(
            f"Mixture of experts merged with mergekit-moe from base `{facts['base']}` and experts "
            f"{', '.join(f'`{e}`' for e in facts['experts'])} (gate_mode={facts['gate_mode']}, "
            f"experts_per_token={facts['experts_per_token']}, dtype={facts['dtype']}).\n"
        )
        merge = merge or {}
        if merge.get("architecture"):
            out.append(
                f"Architecture {merge['architecture']} with {merge.get('num_local_experts')} experts, "
                f"{merge.get('num_experts_per_tok')} per token.\n"
            )
        merge_config = merge.get("mergekit_config") or merge.get("config")
        if merge_config:
            out += [
                "## Merge config\n",
                "```yaml",
                yaml.safe_dump(merge_config, allow_unicode=True, sort_keys=False).rstrip(),
                "```\n",
            ]
    out.append("## Evaluation\n")
    out += tables or ["No evaluation results in this report.\n"]
    if radar:
        out.append(f"![MT-Bench radar chart](./{radar})\n")
    out.append("## Files\n")
    if checksums:
        out += (
            ["| file | sha256 |", "|---|---|"]
            + [f"| {f} | `{h}` |" for f, h in checksums.items()]
            + [""]
        )
    else:
        out.append("No weight files found.\n")
    return "\n".join(out)
