"""What the `train:` settings mean for a run's identity. Their defaults are filled from the
schema (`jaflow.config.schema.filled`): the workflow hands over filled blocks already, and a
job built by hand (a test, a benchmark, `python -m jaflow.train.recipes job.json`) is filled
the same way."""

from __future__ import annotations

# Settings that only change what is logged or reported, never the weights a run ends with.
LOGGING_ONLY = frozenset({"logging_steps", "report_to", "save_total_limit"})
