"""Validation against config/schema.yaml (filling its defaults), with errors that name the key path."""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jsonschema import Draft202012Validator, ValidationError

from jaflow.errors import ConfigError

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "config" / "schema.yaml"


def load_yaml(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def _with_defaults(validator_class: type) -> type:
    """A validator that fills `default` values (deep-copied, so no two keys share one object)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema) -> Iterator[ValidationError]:
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


DefaultFillingValidator = _with_defaults(Draft202012Validator)


def key_path(error: ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<config>"


def _deepest(error: ValidationError) -> ValidationError:
    """For oneOf/anyOf failures, descend to the most specific sub-error."""
    while error.context:
        error = max(error.context, key=lambda e: (len(e.absolute_path), -len(e.message)))
    return error


def format_error(error: ValidationError) -> str:
    error = _deepest(error)
    return f"{key_path(error)}: {error.message}"


def validate_config(
    config: dict[str, Any], schema_path: str | Path = SCHEMA_PATH
) -> dict[str, Any]:
    """Validate `config` in place, filling defaults. Raises ConfigError naming the key path."""
    schema = load_yaml(schema_path)
    validator = DefaultFillingValidator(schema)
    errors = sorted(
        validator.iter_errors(config), key=lambda e: (list(map(str, e.absolute_path)), e.message)
    )
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        lines = [format_error(best)]
        others = [format_error(e) for e in errors if e is not best]
        if others:
            lines.append("other problems:")
            lines += [f"  {m}" for m in others]
        raise ConfigError("invalid config: " + "\n".join(lines))
    return config


@functools.cache
def _block_validator(block: str):
    schema = load_yaml(SCHEMA_PATH)
    return DefaultFillingValidator({"$ref": f"#/$defs/{block}", "$defs": schema["$defs"]})


def filled(block: str, values: dict[str, Any] | None, where: str) -> dict[str, Any]:
    """A copy of `values` validated against the schema's `$defs/<block>`, defaults filled; errors
    name `where`. The workflow hands every job filled blocks already; a function called by hand
    (a test, a benchmark) fills its block here, so the schema stays the only home of defaults."""
    out = copy.deepcopy(dict(values or {}))
    errors = list(_block_validator(block).iter_errors(out))
    if errors:
        raise ConfigError(f"{where}: " + "; ".join(format_error(e) for e in errors))
    return out
