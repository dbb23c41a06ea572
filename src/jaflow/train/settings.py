"""The `train:` and `select:` blocks with the schema's defaults filled in (the schema is their
only home). The workflow hands over filled blocks already; a job built by hand (a test, a
benchmark, `python -m jaflow.train.recipes job.json`) is filled here the same way."""

from __future__ import annotations

from jaflow.config.schema import filled

__all__ = ["filled"]


# Settings that only change what is logged or reported, never the weights a run ends with.
LOGGING_ONLY = frozenset({"logging_steps", "report_to", "save_total_limit"})
