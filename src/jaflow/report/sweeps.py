"""Sweep points as data for the report: which model is which point, with its typed values.

The report rule passes `report_sweep_points(config, report)` as its `sweep_points` param, so the
sweep plots never read a parameter back from a model's name.
"""

from __future__ import annotations

from typing import Any

from jaflow.config.sweeps import _labels, all_sweep_points
from jaflow.errors import ConfigError


def report_sweep_points(
    config: dict[str, Any], report: str
) -> dict[str, dict[str, dict[str, Any]]]:
    """{sweep: {point model: {parameter label: value}}} for each sweep the report plots.

    Parameter labels are the ones the point names use (the last part of the dotted key,
    `train.lora_r` -> `lora_r`, or the whole key where two would clash).
    """
    points = all_sweep_points(config)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for i, sp in enumerate(config["reports"][report]["sweep_plots"]):
        name = sp["sweep"]
        if name not in points:
            raise ConfigError(
                f"reports.{report}.sweep_plots.{i}.sweep: unknown sweep '{name}' "
                f"(sweeps: {sorted(points) or 'none'})"
            )
        labels = _labels(list(dict.fromkeys(k for p in points[name] for k in p.params)))
        out[name] = {p.name: {labels[k]: v for k, v in p.params.items()} for p in points[name]}
    return out
