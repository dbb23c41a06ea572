"""Sampling rules, composable per source, all seeded and deterministic.

A rule takes the records left by the previous one and returns those it keeps, in their
original order. The rules are the ones the model cards use: all rows; random N; the first N;
at most N per value of a column (seed 004: 100 per `source`); rows whose fields all have at
least K characters (seed 004: instruction and output ≥ 11); dedup.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from jaflow.data.sources import Record

Rule = Callable[[list[Record], Any, random.Random], list[Record]]


def keep_all(records: list[Record], _: Any, rng: random.Random) -> list[Record]:
    return list(records)


def random_n(records: Sequence[Record], n: int, rng: random.Random) -> list[Record]:
    """N rows drawn at random, in their original order (works on any sequence, e.g. a range
    of row indices, without walking all of it)."""
    if n >= len(records):
        return list(records)
    return [records[i] for i in sorted(rng.sample(range(len(records)), n))]


def head(records: Sequence[Record], n: int, rng: random.Random) -> list[Record]:
    return list(records[:n])


def max_per_value(records: list[Record], spec: dict[str, Any], rng: random.Random) -> list[Record]:
    groups: dict[Any, list[int]] = defaultdict(list)
    for i, rec in enumerate(records):
        groups[str(rec.value(spec["column"]))].append(i)
    keep: set[int] = set()
    for value in sorted(groups):
        members = groups[value]
        keep.update(members if len(members) <= spec["n"] else rng.sample(members, spec["n"]))
    return [r for i, r in enumerate(records) if i in keep]


def min_chars(records: list[Record], spec: dict[str, Any], rng: random.Random) -> list[Record]:
    fields = spec["fields"]
    return [r for r in records if all(len(str(r.value(f) or "")) >= spec["k"] for f in fields)]


def dedup(records: list[Record], spec: dict[str, Any], rng: random.Random) -> list[Record]:
    fields = spec["fields"]
    seen: set[tuple] = set()
    kept = []
    for rec in records:
        key = (
            tuple(str(rec.value(f)) for f in fields)
            if rec.messages is None
            else (tuple((m["role"], m["content"]) for m in rec.messages),)
        )
        if key not in seen:
            seen.add(key)
            kept.append(rec)
    return kept


# Rules that pick by position only: applied to row indices before any row is read (the
# generic list functions above give the same picks over indices as over records).
INDEX_RULES = frozenset({"all", "random", "head"})

RULES: dict[str, Rule] = {
    "all": keep_all,
    "random": random_n,
    "head": head,
    "max_per_value": max_per_value,
    "min_chars": min_chars,
    "dedup": dedup,
}


def rule_name(rule: dict[str, Any]) -> str:
    (name,) = rule
    return name


def apply_rule(rule: dict[str, Any], records: list, rng: random.Random) -> list:
    """Apply one rule to records (or, for INDEX_RULES, to a list of row indices)."""
    ((name, arg),) = rule.items()
    return RULES[name](records, arg, rng)
