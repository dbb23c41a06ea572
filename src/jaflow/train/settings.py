"""The `train:` and `select:` blocks with the schema's defaults filled in (the schema is their
only home). The workflow hands over filled blocks already; a job built by hand (a test, a
benchmark, `python -m jaflow.train.recipes job.json`) is filled here the same way."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from jaflow.errors import ConfigError


@cache
def _validator(block: str):
    from jaflow.config.schema import SCHEMA_PATH, DefaultFillingValidator, load_yaml

    schema = load_yaml(SCHEMA_PATH)
    return DefaultFillingValidator({"$ref": f"#/$defs/{block}", "$defs": schema["$defs"]})


def filled(block: str, values: dict[str, Any] | None, where: str) -> dict[str, Any]:
    """A copy of `values` validated against `$defs/<block>`, defaults filled; errors name `where`."""
    out = copy.deepcopy(dict(values or {}))
    errors = list(_validator(block).iter_errors(out))
    if errors:
        from jaflow.config.schema import format_error

        raise ConfigError(f"{where}: " + "; ".join(format_error(e) for e in errors))
    return out


# Settings that only change what is logged or reported, never the weights a run ends with.
LOGGING_ONLY = frozenset({"logging_steps", "report_to", "save_total_limit"})
