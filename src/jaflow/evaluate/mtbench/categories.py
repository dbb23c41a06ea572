"""Japanese MT-Bench categories and generation temperatures: the facts, in one place.

- `CATEGORIES`: alphabetical, the order of the model cards' tables (pandas groupby) and of the
  jp-stable question ids (coding 1-10, extraction 11-20, ...).
- `RADAR_ORDER`: the radar chart's axes, clockwise from the top (FastChat's radar.png).
- `TEMPERATURES`: Stability-AI/FastChat jp-stable `temperature_config`; other categories 0.7.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

CATEGORIES: tuple[str, ...] = (
    "coding",
    "extraction",
    "humanities",
    "math",
    "reasoning",
    "roleplay",
    "stem",
    "writing",
)
RADAR_ORDER: tuple[str, ...] = (
    "writing",
    "roleplay",
    "reasoning",
    "math",
    "coding",
    "extraction",
    "stem",
    "humanities",
)
DISPLAY_NAMES: dict[str, str] = {c: ("STEM" if c == "stem" else c.capitalize()) for c in CATEGORIES}

TEMPERATURES: dict[str, float] = {
    "writing": 0.5,
    "roleplay": 0.5,
    "extraction": 0.2,
    "math": 0.1,
    "coding": 0.1,
    "reasoning": 0.1,
    "stem": 0.2,
    "humanities": 0.2,
}
DEFAULT_TEMPERATURE = 0.7
GREEDY_BELOW = 1e-4  # FastChat: do_sample only when temperature >= 1e-4
NEED_REF_CATEGORIES: tuple[str, ...] = ("math", "reasoning", "coding")

AVG_ROW = "avg_score"  # category value of the unweighted mean-over-categories row in scores CSVs


def temperature_for(category: str, table: Mapping[str, float] | None = None) -> float:
    table = TEMPERATURES if table is None else table
    return float(table.get(category, DEFAULT_TEMPERATURE))


def table_order(categories: Iterable[str]) -> list[str]:
    """Categories in the tables' (alphabetical) order; unknown ones sort in among them."""
    return sorted(set(categories))


def radar_order(categories: Iterable[str]) -> list[str]:
    """Categories in radar order; categories outside MT-Bench's eight follow alphabetically."""
    present = set(categories)
    return [c for c in RADAR_ORDER if c in present] + sorted(present - set(RADAR_ORDER))


def display_name(category: str) -> str:
    return DISPLAY_NAMES.get(category, category)
