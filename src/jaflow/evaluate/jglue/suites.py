"""JGLUE suites (named task lists) and the harness names; light to import (no lm-eval, no torch).

A suite entry is `{task, version, template, num_fewshot, metric, harness}` (`config/schema.yaml`,
`jglue_task`). `harness` chooses the request semantics per entry: jp-stable's `hf-causal` or
`hf-causal-experimental` (`jaflow.evaluate.jglue.model`), or `lm-eval` (EleutherAI's own HF model);
null uses `jglue.harness`.
"""

from __future__ import annotations

from typing import Any

from jaflow.errors import ConfigError

JP_STABLE_HARNESSES = ("hf-causal", "hf-causal-experimental")
ALL_HARNESSES = JP_STABLE_HARNESSES + ("lm-eval",)

# Built-in suites: (task family, version, few-shot) in the order the cards print them.
BUILTIN_SUITES: dict[str, list[dict[str, Any]]] = {
    "jglue4": [
        {"task": "jsquad", "version": "1.1", "num_fewshot": 2},
        {"task": "jcommonsenseqa", "version": "1.1", "num_fewshot": 3},
        {"task": "jnli", "version": "1.3", "num_fewshot": 3},
        {"task": "marc_ja", "version": "1.1", "num_fewshot": 3},
    ],
}
BUILTIN_SUITES["jglue6"] = BUILTIN_SUITES["jglue4"] + [
    {"task": "xwinograd_ja", "version": None, "num_fewshot": 0},
    {"task": "jaqket_v2", "version": "0.2", "num_fewshot": 1},
]
# ja8 of the jp-stable harness, in the weblab card's order: 3,3,3,2,1,1,0,5.
BUILTIN_SUITES["jglue8"] = [
    {"task": "jcommonsenseqa", "version": "1.1", "num_fewshot": 3},
    {"task": "jnli", "version": "1.3", "num_fewshot": 3},
    {"task": "marc_ja", "version": "1.1", "num_fewshot": 3},
    {"task": "jsquad", "version": "1.1", "num_fewshot": 2},
    {"task": "jaqket_v2", "version": "0.2", "num_fewshot": 1},
    {"task": "xlsum_ja", "version": "1.0", "num_fewshot": 1},
    {"task": "xwinograd_ja", "version": None, "num_fewshot": 0},
    {"task": "mgsm", "version": "1.0", "num_fewshot": 5},
]


def jglue_suite_tasks(
    jglue: dict[str, Any], suite: str, template: str | None = None
) -> list[dict[str, Any]]:
    """The task list of a suite: config overrides first, then the built-in ones."""
    tasks = jglue["suites"].get(suite) or BUILTIN_SUITES.get(suite)
    if tasks is None:
        known = sorted(set(BUILTIN_SUITES) | set(jglue["suites"]))
        raise ConfigError(f"jglue.runs: unknown suite '{suite}' (known: {known})")
    default_template = template or jglue["template"]
    base = {"template": default_template, "metric": None, "harness": None, "system_prompt": None}
    return [
        dict(base, **{k: v for k, v in t.items() if v is not None or k == "version"}) for t in tasks
    ]
