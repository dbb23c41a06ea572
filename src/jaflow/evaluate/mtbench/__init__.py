"""Japanese MT-Bench: answers in each model's chat format, an LLM judge, per-category scores.

Reads and writes Stability-AI/FastChat (jp-stable) `llm_judge` file formats, so official
question, reference and judge-prompt files plug in and results stay comparable.
"""

from jaflow.evaluate.mtbench.categories import (
    AVG_ROW,
    CATEGORIES,
    RADAR_ORDER,
    TEMPERATURES,
    display_name,
    radar_order,
    table_order,
)
from jaflow.evaluate.mtbench.judge import parse_rating
from jaflow.evaluate.mtbench.scores import score_rows

__all__ = [
    "AVG_ROW",
    "CATEGORIES",
    "RADAR_ORDER",
    "TEMPERATURES",
    "display_name",
    "parse_rating",
    "radar_order",
    "score_rows",
    "table_order",
]
