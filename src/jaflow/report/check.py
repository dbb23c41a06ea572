"""Check the report specs against the config and the model graph when the DAG is built.

A table naming a task no JGLUE run evaluates, an average over a column the table lacks, or a
bootstrap pair of a model the report does not cover would otherwise fail only when the report
job runs, after every evaluation. `check_report_specs` raises ConfigError naming the key, e.g.
`reports.card.tables.0.averages.0.over: unknown column 'jnli'`.
"""

from __future__ import annotations

from typing import Any

from jaflow.errors import ConfigError
from jaflow.graph import ModelGraph
from jaflow.report.tables import MTBENCH_CATEGORIES, parse_columns


def _names(xs) -> str:
    return ", ".join(sorted(map(str, xs))) or "none"


def check_report_specs(config: dict[str, Any], graph: ModelGraph) -> None:
    """Raise ConfigError for unknown models, tables, columns and averages in `config['reports']`."""
    from jaflow.workflow import Targets, jglue_suite_tasks

    targets = Targets(config, graph)
    runs = config["jglue"]["runs"]
    for r, spec in config["reports"].items():
        where = f"reports.{r}"
        covered = targets.report_models(r)
        for key in ("labels", "model_info"):
            for m in spec[key]:
                if m not in graph.nodes:
                    raise ConfigError(
                        f"{where}.{key}: unknown model '{m}' (known: {_names(graph.nodes)})"
                    )
        for m in spec["highlight"]:
            if m not in graph.nodes:
                raise ConfigError(
                    f"{where}.highlight: unknown model '{m}' (known: {_names(graph.nodes)})"
                )
        tables: dict[str, dict[str, Any]] = {}
        for i, t in enumerate(spec["tables"]):
            tw = f"{where}.tables.{i}"
            if t["name"] in tables or t["name"] == "bootstrap":
                raise ConfigError(
                    f"{tw}.name: table '{t['name']}' is already a table of this report"
                )
            models = t["models"] or covered
            for m in t["models"]:
                if m not in covered:
                    raise ConfigError(
                        f"{tw}.models: unknown model '{m}' (the report covers: {_names(covered)})"
                    )
            try:
                cols = parse_columns(t)
            except ConfigError as e:
                raise ConfigError(f"{tw}: {e}") from None
            if t["source"] == "jglue":
                suites = [
                    x["suite"]
                    for x in runs
                    if (not t["suite"] or x["suite"] == t["suite"])
                    and set(x["models"]) & set(models)
                ]
                if t["suite"] and not suites:
                    raise ConfigError(
                        f"{tw}.suite: no JGLUE run evaluates suite '{t['suite']}' on the table's models"
                    )
                tasks = {
                    task["task"]
                    for s in dict.fromkeys(suites)
                    for task in jglue_suite_tasks(config["jglue"], s)
                }
                scored = [
                    m for m in models if any(m in x["models"] for x in runs if x["suite"] in suites)
                ]
            else:
                tasks = set(MTBENCH_CATEGORIES)
                scored = [m for m in models if m in config["mtbench"]["models"]]
            for j, c in enumerate(cols):
                if c.key not in tasks:
                    what = (
                        "JGLUE task of the runs of its models"
                        if t["source"] == "jglue"
                        else "MT-Bench category"
                    )
                    raise ConfigError(
                        f"{tw}.columns.{j}.task: unknown column '{c.key}' (not a {what}: {_names(tasks)})"
                    )
            names = {c.key for c in cols} | {c.label for c in cols if "{" not in c.label}
            averages = []
            for k, a in enumerate(t["averages"]):
                for name in a.get("over") or []:
                    if name not in names:
                        raise ConfigError(
                            f"{tw}.averages.{k}.over: unknown column '{name}' (columns: {_names(names)})"
                        )
                averages.append(a["label"])
            shown = {c.label for c in cols} | set(averages)
            for m, values in t["published"].items():
                if m not in models:
                    raise ConfigError(
                        f"{tw}.published: unknown model '{m}' (the table's models: {_names(models)})"
                    )
                for col in values:
                    if col not in shown:
                        raise ConfigError(
                            f"{tw}.published.{m}: unknown column '{col}' (columns: {_names(shown)})"
                        )
            tables[t["name"]] = dict(t, _models=scored, _shown=shown)
        for i, name in enumerate(spec["jglue_radar"]):
            if name not in tables or tables[name]["source"] != "jglue":
                raise ConfigError(
                    f"{where}.jglue_radar.{i}: unknown JGLUE table '{name}' (tables: {_names(tables)})"
                )
        b = spec["bootstrap"]
        if b:
            t = tables.get(b["table"])
            if t is None or t["source"] != "jglue":
                raise ConfigError(
                    f"{where}.bootstrap.table: unknown JGLUE table '{b['table']}' (tables: {_names(tables)})"
                )
            for i, pair in enumerate(b["pairs"]):
                for m in pair:
                    if m not in t["_models"]:
                        raise ConfigError(
                            f"{where}.bootstrap.pairs.{i}: unknown model '{m}' (the models with "
                            f"scores in table '{b['table']}': {_names(t['_models'])})"
                        )
        for i, sp in enumerate(spec["sweep_plots"]):
            if sp["sweep"] not in config["sweeps"]:
                raise ConfigError(
                    f"{where}.sweep_plots.{i}.sweep: unknown sweep '{sp['sweep']}' "
                    f"(sweeps: {_names(config['sweeps'])})"
                )
            t = tables.get(sp["table"])
            if t is None:
                raise ConfigError(
                    f"{where}.sweep_plots.{i}.table: unknown table '{sp['table']}' (tables: {_names(tables)})"
                )
            if sp["column"] not in t["_shown"]:
                raise ConfigError(
                    f"{where}.sweep_plots.{i}.column: unknown column '{sp['column']}' "
                    f"(columns: {_names(t['_shown'])})"
                )
