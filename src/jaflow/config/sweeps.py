"""Ablation sweeps: expand a template model into one model of the graph per parameter point.

```yaml
sweeps:
  lora:
    model: tiny_qlora                 # the template: a model of the graph
    grid:                             # product of the lists, in the order written
      train.lora_r: [8, 16]
      train.learning_rate: [0.0001, 0.001]
    points:                           # explicit sets, after the grid
      - {train.lora_r: 4, dataset: other_mix}
```

Each point becomes a model named `<sweep>~<key>=<value>~...` (key: the last part of the dotted
key, e.g. `lora_r`), a deep copy of the template with the point's values set. The template
itself is replaced by its points. Jobs, evaluations and reports see ordinary models, so every
rule works unchanged; wherever `jglue.runs`, `mtbench.models` or `reports.*.models` name the
sweep (or its template), they mean all of its points, in order.

Unlike `snakemake.utils.Paramspace`, values never become wildcards parsed back from paths:
names are built once here, checked path-safe and unique, and each point's values stay typed.
"""

from __future__ import annotations

import copy
import functools
import itertools
import re
from dataclasses import dataclass
from typing import Any

from jaflow.config.schema import SCHEMA_PATH, DefaultFillingValidator, format_error, load_yaml
from jaflow.errors import ConfigError

SEP = "~"
SAFE_VALUE = re.compile(r"[^A-Za-z0-9._+-]")


@dataclass(frozen=True)
class Point:
    name: str
    params: dict[str, Any]


def format_value(value: Any) -> str:
    """A path-safe spelling of a parameter value: 0.0001 -> '0.0001', [a, b] -> 'a+b'."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (list, tuple)):
        text = "+".join(format_value(v) for v in value)
    elif isinstance(value, dict):
        text = "+".join(f"{k}-{format_value(v)}" for k, v in value.items())
    elif value is None:
        text = "null"
    else:
        text = str(value)
    return SAFE_VALUE.sub("-", text)


def _labels(keys: list[str]) -> dict[str, str]:
    """Short labels for dotted keys: the last part, or the whole key where two would clash."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {
        k: (short if last.count(short) == 1 else k) for k, short in zip(keys, last, strict=True)
    }


def sweep_points(name: str, sweep: dict[str, Any]) -> list[Point]:
    """The points of one sweep: the grid's product first, then the explicit points."""
    where = f"sweeps.{name}"
    grid = sweep.get("grid") or {}
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}.grid.{key}: expected a non-empty list of values")
    param_sets = (
        [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]
        if grid
        else []
    )
    for i, point in enumerate(sweep.get("points") or []):
        if not isinstance(point, dict) or not point:
            raise ConfigError(f"{where}.points[{i}]: expected a mapping of dotted keys to values")
        param_sets.append(dict(point))
    if not param_sets:
        raise ConfigError(f"{where}: a sweep needs a grid or points")
    keys = list(dict.fromkeys(k for p in param_sets for k in p))
    labels = _labels(keys)
    points: list[Point] = []
    seen: dict[str, int] = {}
    for i, params in enumerate(param_sets):
        parts = [f"{labels[k]}={format_value(v)}" for k, v in params.items()]
        point_name = SEP.join([name, *parts])
        if point_name in seen:
            raise ConfigError(
                f"{where}: points {seen[point_name]} and {i} both make the model '{point_name}' "
                "(a repeated point, or values that differ only in characters a path cannot hold)"
            )
        seen[point_name] = i
        points.append(Point(point_name, params))
    return points


def _set_dotted(spec: dict[str, Any], key: str, value: Any, where: str) -> None:
    parts = key.split(".")
    node = spec
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{where}: '{key}' goes through '{part}', which is not a mapping")
        node = child
    node[parts[-1]] = copy.deepcopy(value)


@functools.lru_cache(maxsize=1)
def _model_validator():
    schema = load_yaml(SCHEMA_PATH)
    return DefaultFillingValidator({"$defs": schema["$defs"], "$ref": "#/$defs/model"})


def _check_point(spec: dict[str, Any], where: str) -> None:
    """Validate one point's model against the schema's model definition (fills defaults)."""
    errors = list(_model_validator().iter_errors(spec))
    if errors:
        message = format_error(errors[0])
        hint = ""
        if "is not of type" in message and "'" in message:
            hint = " (values given with --config arrive as strings; put sweeps in a --configfile)"
        raise ConfigError(f"{where}: {message.replace('<config>: ', '')}{hint}")


def _expand_refs(names: list[str], groups: dict[str, list[str]]) -> list[str]:
    out: list[str] = []
    for n in names:
        out += groups.get(n, [n])
    return list(dict.fromkeys(out))


def expand_sweeps(config: dict[str, Any]) -> dict[str, Any]:
    """Add one model per sweep point to config['models'], replacing each template.

    Runs after schema validation. Idempotent: a config already expanded is left as is.
    """
    sweeps = config.get("sweeps") or {}
    if not sweeps:
        return config
    models = config.setdefault("models", {})
    groups: dict[str, list[str]] = {}
    templates: set[str] = set()
    for name, sweep in sweeps.items():
        if SEP in name or SAFE_VALUE.search(name):
            raise ConfigError(
                f"sweeps.{name}: a sweep name may hold only letters, digits and . _ + -"
            )
        if name in models:
            raise ConfigError(
                f"sweeps.{name}: the name is also a model; sweeps and models need distinct names"
            )
        template = sweep["model"]
        points = sweep_points(name, sweep)
        if template not in models:
            if all(p.name in models for p in points):
                groups[name] = [p.name for p in points]  # expanded before
                continue
            known = ", ".join(sorted(models)) or "none"
            raise ConfigError(f"sweeps.{name}.model: unknown model '{template}' (known: {known})")
        checked: set[str] = set()
        for point in points:
            where = f"sweeps.{name} point '{point.name}'"
            if point.name in models:
                raise ConfigError(f"sweeps.{name}: point '{point.name}' is already a model")
            # The template is valid, so each (key, value) is checked once on its own: a
            # 1,000-point grid of 10 x 100 values costs 110 schema checks, not 1,000.
            for key, value in point.params.items():
                token = repr((key, value, type(value)))
                if token not in checked:
                    single = copy.deepcopy(models[template])
                    _set_dotted(single, key, value, where)
                    _check_point(single, where)
                    checked.add(token)
            spec = copy.deepcopy(models[template])
            for key, value in point.params.items():
                _set_dotted(spec, key, value, where)
            models[point.name] = spec
        groups[name] = [p.name for p in points]
        groups.setdefault(template, [])
        groups[template] += groups[name]
        templates.add(template)

    for template in templates:
        for other, spec in models.items():
            refs = [spec.get("from"), spec.get("base")]
            refs += [e["model"] if isinstance(e, dict) else e for e in spec.get("experts") or []]
            if template in refs:
                raise ConfigError(
                    f"models.{other}: builds on '{template}', the template of a sweep, which is "
                    "replaced by its points; name one point instead"
                )
        del models[template]

    for run in config.get("jglue", {}).get("runs", []):
        run["models"] = _expand_refs(run["models"], groups)
    mtbench = config.get("mtbench", {})
    if "models" in mtbench:
        mtbench["models"] = _expand_refs(mtbench["models"], groups)
    for report in (config.get("reports") or {}).values():
        if report.get("models"):
            report["models"] = _expand_refs(report["models"], groups)
    return config


def all_sweep_points(config: dict[str, Any]) -> dict[str, list[Point]]:
    """Every sweep's points (names and parameter values), e.g. for the report's summary table."""
    return {name: sweep_points(name, sweep) for name, sweep in (config.get("sweeps") or {}).items()}
