"""Write one report: tables, plots, significance tests, model cards and an index."""

from __future__ import annotations

import itertools
import logging
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from jaflow.errors import ConfigError, DataError
from jaflow.io import atomic_path
from jaflow.report import cards, load, plots
from jaflow.report.stats import paired_bootstrap
from jaflow.report.tables import (
    MTBENCH_CATEGORIES,
    MTBENCH_RADAR_ORDER,
    Table,
    build_table,
    format_number,
)

log = logging.getLogger("jaflow.report")

RADAR_ORDERS = {"table": MTBENCH_CATEGORIES, "fastchat": MTBENCH_RADAR_ORDER}


def build_report(spec: dict[str, Any], inputs: dict[str, list[str]], out_dir: str | Path, *,
                 models: list[str], facts: dict[str, dict[str, Any]] | None = None, seed: int = 1234) -> Path:
    """Write the report `spec` into `out_dir` (replaced as a whole, so a failure leaves nothing)."""
    facts = facts or {}
    jglue = load.read_jglue_scores(inputs.get("jglue", []))
    mtbench = load.read_mtbench_scores(inputs.get("mtbench", []))
    labels = dict(spec.get("labels") or {})
    with atomic_path(out_dir) as tmp:
        for sub in ("tables", "plots", "cards"):
            (tmp / sub).mkdir(parents=True)
        built = _tables(spec, jglue, mtbench, models, tmp)
        index = [f"# {spec.get('title', 'jaflow report')}\n"]
        for t in built:
            index += [f"## {t.title}\n", t.caption + "\n" if t.caption else "", t.to_markdown(),
                      f"Files: [md](tables/{t.name}.md), [csv](tables/{t.name}.csv), [tex](tables/{t.name}.tex)\n"]
        figures = _plots(spec, jglue, mtbench, models, built, inputs, tmp, labels)
        boot = _bootstrap(spec, jglue, built, tmp, seed)
        if boot is not None:
            index += ["## Paired bootstrap\n", boot.to_markdown()]
        if figures:
            index.append("## Plots\n")
            index += [f"![{name}](plots/{name})\n" for name in figures]
        written = _cards(spec, facts, jglue, mtbench, built, inputs, tmp, models)
        if written:
            index.append("## Model cards\n")
            index += [f"- [{m}](cards/{m}/README.md)" for m in written] + [""]
        (tmp / "index.md").write_text("\n".join(index), encoding="utf-8")
    return Path(out_dir)


def _tables(spec: dict, jglue: pd.DataFrame, mtbench: pd.DataFrame, models: list[str], out: Path) -> list[Table]:
    names = [t["name"] for t in spec.get("tables", [])]
    if len(set(names)) != len(names):
        raise ConfigError(f"reports.tables: table names repeat: {names}")
    built = []
    for t in spec.get("tables", []):
        unknown = [m for m in t.get("models") or [] if m not in models]
        if unknown:
            raise ConfigError(f"reports.tables.{t['name']}.models: {unknown} not among the report's models {models}")
        table = build_table(t, jglue, mtbench, models, labels=spec.get("labels"), info=spec.get("model_info"),
                            highlight=spec.get("highlight"))
        for ext, text in (("md", table.to_markdown()), ("csv", table.to_csv()), ("tex", table.to_latex())):
            (out / "tables" / f"{table.name}.{ext}").write_text(text, encoding="utf-8")
        built.append(table)
    return built


def _plots(spec: dict, jglue: pd.DataFrame, mtbench: pd.DataFrame, models: list[str], built: list[Table],
           inputs: dict[str, list[str]], out: Path, labels: dict[str, str]) -> list[str]:
    written: list[str] = []
    turn = str(spec.get("radar_turn", 1))
    mt = mtbench[(mtbench["turn"] == turn) & mtbench["model"].isin(models)]
    if spec.get("radar", True) and not mt.empty:
        order = spec.get("radar_order", "table")
        axes = list(RADAR_ORDERS.get(order, order) if isinstance(order, str) else order)
        grid = mt.pivot_table(index="model", columns="category", values="score", aggfunc="mean", dropna=False)
        grid = grid.reindex(index=[m for m in models if m in set(mt["model"])], columns=axes)
        if grid.isna().all().all():
            log.warning("MT-Bench radar: no valid judge ratings in %s; the chart has no polygons", sorted(set(mt["path"])))
        from jaflow.report.tables import CATEGORY_LABELS

        plots.radar(grid, axes, out / "plots" / "mtbench_radar.png", title=f"MT-Bench (turn {turn})",
                    vmax=10.0, labels={**CATEGORY_LABELS, **labels})
        written.append("mtbench_radar.png")
    for name in spec.get("jglue_radar") or []:
        table = _table(built, name, "jglue_radar")
        cols = [c for c in table.numbers.columns if c not in _average_labels(spec, name)]
        top = float(pd.DataFrame(table.numbers[cols]).max().max())
        plots.radar(table.numbers[cols], cols, out / "plots" / f"{name}_radar.png", title=table.title,
                    vmax=1.0 if top <= 1 else 100.0 if top <= 100 else None, labels=labels)
        written.append(f"{name}_radar.png")
    if spec.get("training_curves", True):
        model_dirs = {Path(p).name: Path(p) for p in inputs.get("models", [])}
        for path in inputs.get("log_history", []):
            model = Path(path).parent.name
            selection = model_dirs.get(model, Path("/nonexistent")) / "selection.json"
            step = load.read_json(selection).get("step") if selection.exists() else None
            lisa_path = Path(path).parent / "lisa_layers.csv"
            lisa = load.read_lisa_layers(lisa_path) if lisa_path.exists() else None
            fname = f"train_{plots.safe_name(model)}.png"
            plots.training_curves(load.read_log_history(path), out / "plots" / fname, title=labels.get(model, model),
                                  selected_step=step, lisa=lisa)
            written.append(fname)
    for i, sp in enumerate(spec.get("sweep_plots") or []):
        table = _table(built, sp["table"], f"sweep_plots[{i}].table")
        if sp["column"] not in table.numbers.columns:
            raise ConfigError(f"reports.sweep_plots[{i}].column: '{sp['column']}' is not a column of table "
                              f"'{sp['table']}' ({list(table.numbers.columns)})")
        points = plots.sweep_frame(table.numbers[sp["column"]], sp["sweep"])
        if points.empty:
            raise DataError(f"reports.sweep_plots[{i}]: table '{sp['table']}' has no rows of sweep '{sp['sweep']}' "
                            f"(models named '{sp['sweep']}~key=value~...')")
        stem = plots.safe_name(f"sweep_{sp['sweep']}_{sp['column']}")
        plots.sweep_lines(points, sp["column"], out / "plots" / f"{stem}.png", title=sp["sweep"])
        written.append(f"{stem}.png")
        params = [c for c in points.columns if c not in ("value", "model")]
        pairs = [tuple(sp["heatmap"])] if sp.get("heatmap") else list(itertools.combinations(params, 2))
        for x, y in pairs:
            hname = plots.safe_name(f"{stem}_{x}_{y}") + ".png"
            plots.sweep_heatmap(points, x, y, sp["column"], out / "plots" / hname, title=sp["sweep"])
            written.append(hname)
    return written


def _average_labels(spec: dict, table: str) -> set[str]:
    t = next(t for t in spec.get("tables", []) if t["name"] == table)
    return {a.get("label", "average") for a in t.get("averages") or []}


def _table(built: list[Table], name: str, where: str) -> Table:
    for t in built:
        if t.name == name:
            return t
    raise ConfigError(f"reports.{where}: no table '{name}' (tables: {[t.name for t in built]})")


def _bootstrap(spec: dict, jglue: pd.DataFrame, built: list[Table], out: Path, seed: int) -> Table | None:
    """Paired bootstrap for each pair of models on each column of a JGLUE table."""
    b = spec.get("bootstrap")
    if not b:
        return None
    tspec = next((t for t in spec.get("tables", []) if t["name"] == b["table"]), None)
    if tspec is None or tspec.get("source", "jglue") != "jglue":
        raise ConfigError(f"reports.bootstrap.table: '{b['table']}' is not a JGLUE table of this report")
    from jaflow.report.tables import Cell, parse_columns

    suite = tspec.get("suite")
    df = jglue if not suite else jglue[jglue["suite"] == suite]
    rows, csv_rows = [], []
    alpha = float(b.get("alpha", 0.05))
    for a, c in b["pairs"]:
        for col in parse_columns(tspec):
            samples = []
            for m in (a, c):
                hit = df[(df["model"] == m) & (df["task"] == col.key) & (df["metric"] == col.metric)]
                if hit.empty:
                    raise DataError(f"reports.bootstrap: no scores for model '{m}', task '{col.key}'")
                row = hit.iloc[0]
                path = load.find_samples(row["path"], col.key, str(row["task_version"]), str(row["template"]))
                if path is None:
                    raise DataError(f"reports.bootstrap: no samples_{col.key}*.jsonl next to {hit.iloc[0]['path']}")
                samples.append(load.read_samples(path, col.metric))
            r = paired_bootstrap(*samples, n_resamples=int(b.get("n_resamples", 10_000)), alpha=alpha, seed=seed)
            cells = [a, c, col.key, col.metric, str(r.n)] + [format_number(v, 4) for v in (r.mean_a, r.mean_b, r.diff, r.ci_low, r.ci_high, r.p_value)]
            cells.append("yes" if r.significant else "no")
            rows.append([Cell(text=x) for x in cells])
            csv_rows.append({"model_a": a, "model_b": c, "task": col.key, "metric": col.metric, **r.as_dict()})
    header = ["model A", "model B", "task", "metric", "n", "mean A", "mean B", "A − B",
              f"CI {100 * (1 - alpha):g}% low", "CI high", "p", "significant"]
    table = Table(name="bootstrap", title="Paired bootstrap", header=header, rows=rows)
    (out / "tables" / "bootstrap.md").write_text(table.to_markdown(), encoding="utf-8")
    pd.DataFrame(csv_rows).to_csv(out / "tables" / "bootstrap.csv", index=False)
    return table


def _cards(spec: dict, facts: dict, jglue: pd.DataFrame, mtbench: pd.DataFrame, built: list[Table],
           inputs: dict[str, list[str]], out: Path, models: list[str]) -> list[str]:
    if not spec.get("model_cards", True):
        return []
    model_dirs = {Path(p).name: Path(p) for p in inputs.get("models", [])}
    manifests = {Path(p).parent.name: Path(p) for p in inputs.get("manifests", [])}
    written = []
    turn = str(spec.get("radar_turn", 1))
    for m in models:
        f = facts.get(m)
        if not f or m not in model_dirs:
            continue
        d = model_dirs[m]
        card_dir = out / "cards" / m
        card_dir.mkdir(parents=True)
        tables = [f"### {t.title}\n\n{t.to_markdown()}" for t in built if m in t.numbers.index]
        radar = None
        if (out / "plots" / "mtbench_radar.png").exists() and (mtbench["model"] == m).any():
            shutil.copyfile(out / "plots" / "mtbench_radar.png", card_dir / "japanese_mt_bench.png")
            radar = "japanese_mt_bench.png"
        manifest = f.get("dataset") and manifests.get(f["dataset"])
        text = cards.render_card(
            m, f, jglue=jglue, mtbench=mtbench, tables=tables, radar=radar,
            checksums=cards.weight_checksums(d),
            manifest=load.read_json(manifest) if manifest else None,
            selection=load.read_json(d / "selection.json") if (d / "selection.json").exists() else None,
            merge=load.read_json(d / "merge.json") if (d / "merge.json").exists() else None,
            turn=turn,
        )
        (card_dir / "README.md").write_text(text, encoding="utf-8")
        written.append(m)
    return written
