"""Build a merge node's mergekit-moe config, check it, run mergekit's MoE merge, record it.

The merge itself is mergekit's (`mergekit.scripts.moe.build`, the code behind the
`mergekit-moe` command); jaflow only turns the graph's spec into mergekit's config, refuses
bad input before anything is written, and records what was done.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml

from jaflow.errors import ConfigError
from jaflow.io import WEIGHT_SUFFIXES, atomic_path, sha256_tree, write_checksums, write_json
from jaflow.merge.compat import ModelRef, check_compatible
from jaflow.provenance import model_identity

log = logging.getLogger(__name__)

PROMPT_FREE_GATES = ("random",)  # mergekit asks positive_prompts of every other gate mode
EXPERT_OPTIONS = ("positive_prompts", "negative_prompts", "noise_scale", "residual_scale")


def _refs(spec: dict[str, Any]) -> tuple[ModelRef, list[ModelRef]]:
    base = ModelRef(spec["base"].get("model", spec["base"]["pretrained"]), "base", spec["base"])
    experts = [
        ModelRef(e["model"], f"experts[{i}]", e["hf"]) for i, e in enumerate(spec["experts"])
    ]
    return base, experts


def mergekit_config(spec: dict[str, Any]) -> dict[str, Any]:
    """mergekit-moe's YAML config (as a dict) for a merge spec from the workflow's `merge_spec`."""

    def ref(hf: dict[str, Any]) -> dict[str, Any]:
        # A mapping, not a string: mergekit would read '+' in a path as a LoRA and '@' as a revision.
        return {"model": {"path": hf["pretrained"]}}

    experts = []
    for e in spec["experts"]:
        expert = {"source_model": ref(e["hf"])}
        expert.update({k: e[k] for k in EXPERT_OPTIONS if e.get(k) is not None})
        experts.append(expert)
    dtype = spec["dtype"]
    return {
        "base_model": ref(spec["base"]),
        "architecture": "Mixtral",
        "gate_mode": spec["gate_mode"],
        "experts_per_token": spec["experts_per_token"],
        "dtype": None if dtype == "auto" else dtype,
        "experts": experts,
    }


@contextlib.contextmanager
def _collect_errors() -> Iterator[list[str]]:
    """mergekit reports a bad config with logging.error; collect those messages."""
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = Collect(logging.ERROR)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield messages
    finally:
        root.removeHandler(handler)


def check_spec(spec: dict[str, Any]) -> None:
    """Refuse what mergekit cannot merge, naming the merge, the expert and the field."""
    from mergekit.moe.config import MoEMergeConfig, is_bad_config

    where = f"models.{spec.get('name', 'merge')}"
    base, experts = _refs(spec)
    for ref in [base, *experts]:
        if ref.hf.get("peft"):
            raise ConfigError(
                f"{where}.{ref.role}: model {ref} is a peft adapter ({ref.hf['peft']}); mergekit-moe "
                "needs full weights, so merge the adapter first (select.merge_adapter: true)"
            )
    gate_mode = spec["gate_mode"]
    if gate_mode not in PROMPT_FREE_GATES:
        for e, ref in zip(spec["experts"], experts, strict=True):
            if not e.get("positive_prompts"):
                raise ConfigError(
                    f"{where}.{ref.role}.positive_prompts: expert {ref} has none, but mergekit-moe "
                    f"needs them for every expert with gate_mode '{gate_mode}' (only 'random' goes "
                    "without): they are what the router learns to send to this expert"
                )
    with _collect_errors() as errors:
        bad = is_bad_config(MoEMergeConfig.model_validate(mergekit_config(spec)))
    if bad:
        raise ConfigError(f"{where}: mergekit-moe refuses this merge: " + " ".join(errors))


def _versions() -> dict[str, str]:
    import torch
    import transformers

    return {
        "mergekit": version("mergekit"),
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "jaflow": version("jaflow"),
    }


def _save_tokenizer(base: ModelRef, out: Path) -> None:
    """The base's own tokenizer, unchanged (mergekit's copy switches it to left padding)."""
    import transformers

    transformers.AutoTokenizer.from_pretrained(
        base.hf.get("tokenizer") or base.path,
        use_fast=base.hf["use_fast"],
        trust_remote_code=base.hf["trust_remote_code"],
    ).save_pretrained(out)
    with contextlib.suppress(OSError):
        transformers.GenerationConfig.from_pretrained(base.path).save_pretrained(out)


def merge_moe(
    spec: dict[str, Any], out_dir: str | Path, *, seed: int = 0, device: str = "auto"
) -> Path:
    """Merge `spec` (see workflow/rules/common.smk `merge_spec`) into an HF Mixtral dir at `out_dir`.

    Everything is checked first; the directory appears only when the merge succeeded, holding the
    weights, config, tokenizer, `mergekit_moe_config.yml`, `merge.json` and `checksums.sha256`.
    """
    import transformers
    from mergekit.merge import MergeOptions
    from mergekit.moe.config import MoEMergeConfig
    from mergekit.scripts.moe import build

    check_spec(spec)
    base, experts = _refs(spec)
    check_compatible(base, experts, where=f"models.{spec.get('name', 'merge')}")

    config = mergekit_config(spec)
    trust = any(r.hf["trust_remote_code"] for r in [base, *experts])
    options = MergeOptions(
        copy_tokenizer=False, device=device, trust_remote_code=trust, random_seed=seed
    )
    out_dir = Path(out_dir)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        transformers.set_seed(seed)  # random gates and noise_scale draw from torch's global RNG
        log.info("mergekit-moe: %s experts, gate_mode=%s", len(experts), config["gate_mode"])
        build(MoEMergeConfig.model_validate(config), str(tmp), options, device=options.device)
        _save_tokenizer(base, tmp)
        (tmp / "mergekit_moe_config.yml").write_text(
            yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
        )
        out_cfg = transformers.AutoConfig.from_pretrained(tmp)
        write_json(
            tmp / "merge.json",
            {
                "name": spec.get("name"),
                "base": base.name,
                "experts": [e.name for e in experts],
                # what the merge was made from, by content (weights' checksums, or hub id + revision)
                "inputs": {r.name: model_identity(r.hf) for r in [base, *experts]},
                "architecture": out_cfg.architectures[0],
                "num_local_experts": out_cfg.num_local_experts,
                "num_experts_per_tok": out_cfg.num_experts_per_tok,
                "seed": seed,
                "mergekit_config": config,
                "versions": _versions(),
                "sha256": sha256_tree(tmp, suffixes=WEIGHT_SUFFIXES),
            },
        )
        write_checksums(tmp)
    return out_dir
