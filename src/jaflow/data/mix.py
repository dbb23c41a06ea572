"""Build one dataset mix: read each source, apply its rules, balance, render, split, write.

Everything is computed in memory first and written at the end (each file atomically), so a
bad row or an empty result leaves no output behind.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jaflow
from jaflow.data.sampling import INDEX_RULES, apply_rule, random_n, rule_name
from jaflow.data.sources import Record, load_records, open_source
from jaflow.data.templates import Rendered, get_template
from jaflow.errors import DataError
from jaflow.io import sha256_file, write_json, write_jsonl

log = logging.getLogger(__name__)


@dataclass
class SourceResult:
    name: str
    records: list[Record]
    template: Any
    manifest: dict[str, Any]


def _rng(seed: int, *parts: str) -> random.Random:
    # String seeds are hashed with sha512 by `random`, so this is stable across processes.
    return random.Random(":".join([str(seed), *parts]))


def sample_source(
    dataset: str, index: int, spec: dict[str, Any], default_template: Any, seed: int
) -> SourceResult:
    template = spec.get("template", default_template)
    table = open_source(spec)
    rules = spec["rules"]
    rng = _rng(seed, dataset, spec["name"])
    where = f"datasets.{dataset}.sources[{index}] ('{spec['name']}')"
    steps = []

    def step(rule: dict, before: int, after: int) -> None:
        steps.append({"rule": rule, "before": before, "after": after})
        if not after:
            raise DataError(f"{where}: rule {rule} left no rows (had {before})")

    # Position-only rules first, on indices: only the rows they keep are ever read.
    n_index = 0
    indices: Sequence[int] = range(len(table))  # never a list of every row of a large source
    while n_index < len(rules) and rule_name(rules[n_index]) in INDEX_RULES:
        before = len(indices)
        indices = apply_rule(rules[n_index], indices, rng)
        step(rules[n_index], before, len(indices))
        n_index += 1
    records = load_records(table, indices, spec, template)
    for rule in rules[n_index:]:
        before = len(records)
        records = apply_rule(rule, records, rng)
        step(rule, before, len(records))
    manifest = {
        "name": spec["name"],
        "input": table.description,
        "rows_read": len(table),
        "rows_loaded": len(indices),
        "steps": steps,
    }
    return SourceResult(spec["name"], records, template, manifest)


def _balance(dataset: str, spec: dict[str, Any], results: list[SourceResult], seed: int) -> None:
    per_source = spec["equal_per_source"]
    quotas: list[int | None]
    if per_source:
        quotas = [per_source] * len(results)
    elif spec["total"]:
        base, extra = divmod(spec["total"], len(results))
        quotas = [base + (1 if i < extra else 0) for i in range(len(results))]
    else:
        quotas = [None] * len(results)
    for res, quota in zip(results, quotas, strict=True):
        if quota is None:
            continue
        if len(res.records) < quota:
            raise DataError(
                f"datasets.{dataset}: source '{res.name}' has {len(res.records)} rows after its "
                f"rules, fewer than the {quota} asked per source"
            )
        before = len(res.records)
        res.records = random_n(res.records, quota, _rng(seed, dataset, res.name, "balance"))
        res.manifest["steps"].append({"rule": {"equal": quota}, "before": before, "after": quota})


def _render(res: SourceResult) -> list[dict[str, Any]]:
    template = get_template(res.template)
    rows = []
    for rec in res.records:
        rendered: Rendered = (
            template.render_messages(rec.messages) if rec.messages else template.render(rec.fields)
        )
        rows.append(
            {
                "id": f"{res.name}:{rec.index}",
                "source": res.name,
                "prompt": rendered.prompt,
                "response": rendered.response,
            }
        )
    return rows


def _split(rows: list[dict], validation: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    if "size" in validation:
        n_val = validation["size"]
    else:
        n_val = round(len(rows) * validation.get("fraction", 0.0))
    if n_val >= len(rows):
        raise DataError(
            f"validation split of {n_val} rows leaves nothing to train on ({len(rows)} rows)"
        )
    return rows[: len(rows) - n_val], rows[len(rows) - n_val :]


def check_expected(
    name: str, spec: dict[str, Any], results: list[SourceResult], total: int
) -> dict[str, Any]:
    """Expected vs actual rows, per source (`expect:`) and in total (the mix's `expect:`).

    Each source's manifest gets `expected` and `actual`; a mismatch is logged as a warning,
    or, with the mix's `strict: true`, stops the build naming every mismatch.
    """
    mismatches = []
    for i, res in enumerate(results):
        want = spec["sources"][i]["expect"]
        res.manifest["expected"] = want
        res.manifest["actual"] = len(res.records)
        if want is not None and want != len(res.records):
            mismatches.append(
                f"datasets.{name}.sources[{i}] ('{res.name}'): expected {want} rows, got {len(res.records)}"
            )
    want = spec["expect"]
    if want is not None and want != total:
        mismatches.append(f"datasets.{name}: expected {want} rows in total, got {total}")
    if mismatches and spec["strict"]:
        raise DataError("expected counts not met (strict: true):\n  " + "\n  ".join(mismatches))
    for m in mismatches:
        log.warning("%s", m)
    return {
        "total": want,
        "actual_total": total,
        "strict": spec["strict"],
        "mismatches": mismatches,
    }


def build_mix(
    name: str, spec: dict[str, Any], seed: int, out: dict[str, str | Path]
) -> dict[str, Any]:
    """Sample dataset `name` (its spec filled from the schema) and write out['train'],
    out['validation'], out['manifest']."""
    seed = spec["seed"] if spec["seed"] is not None else seed
    default_template = spec["template"]
    results = [
        sample_source(name, i, s, default_template, seed) for i, s in enumerate(spec["sources"])
    ]
    _balance(name, spec, results, seed)
    rows = [row for res in results for row in _render(res)]
    if spec["shuffle"]:
        _rng(seed, name, "shuffle").shuffle(rows)
    train, validation = _split(rows, spec["validation"])
    for res in results:
        res.manifest["rows_used"] = len(res.records)
    expected = check_expected(name, spec, results, len(rows))
    manifest = {
        "dataset": name,
        "seed": seed,
        "template": default_template,
        "jaflow_version": jaflow.__version__,
        "sources": [r.manifest for r in results],
        "expected": expected,
        "counts": {
            "train": len(train),
            "validation": len(validation),
            "total": len(rows),
            "per_source": {r.name: len(r.records) for r in results},
        },
    }
    write_jsonl(out["train"], train)
    write_jsonl(out["validation"], validation)
    manifest["outputs"] = {
        k: {"path": str(out[k]), "sha256": sha256_file(out[k])} for k in ("train", "validation")
    }
    write_json(out["manifest"], manifest)
    return manifest
