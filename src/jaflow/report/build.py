"""Write one report: tables, plots, significance tests, model cards and an index."""

from __future__ import annotations

import itertools
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from jaflow.config.schema import filled
from jaflow.errors import ConfigError, DataError
from jaflow.io import atomic_path
from jaflow.report import cards, html, load, plots
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


def build_report(
    spec: dict[str, Any],
    inputs: dict[str, list[str]],
    out_dir: str | Path,
    *,
    models: list[str],
    facts: dict[str, dict[str, Any]] | None = None,
    seed: int = 1234,
    sweep_points: dict[str, dict[str, dict[str, Any]]] | None = None,
    origin: dict[str, Any] | None = None,
) -> Path:
    """Write the report `spec` into `out_dir` (replaced as a whole, so a failure leaves nothing).

    `sweep_points` maps each sweep the report plots to its points: model -> {parameter: value}
    (`jaflow.report.sweeps.report_sweep_points`). `origin` says what made the report, for the
    captions: {"report": name, "configfiles": [...]}.
    """
    spec = filled("report", spec, "reports")
    facts = facts or {}
    origin = Origin.of(spec, origin)
    jglue = load.read_jglue_scores(inputs.get("jglue", []))
    mtbench = load.read_mtbench_scores(inputs.get("mtbench", []))
    labels = dict(spec["labels"])
    with atomic_path(out_dir) as tmp:
        for sub in ("tables", "plots", "cards"):
            (tmp / sub).mkdir(parents=True)
        pages = html.Pages(tmp / "html")
        built = _tables(spec, jglue, mtbench, models, tmp)
        index = [f"# {spec['title']}\n", f"{origin.text}\n"]
        for t, tspec in zip(built, spec["tables"], strict=True):
            caption = _table_caption(t, tspec, jglue, mtbench, origin)
            stage = "MT-Bench" if tspec["source"] == "mtbench" else "JGLUE"
            files = [(ext, f"tables/{t.name}.{ext}") for ext in ("md", "csv", "tex")]
            pages.add(html.Item(t.name, stage, t.title, caption), t.to_html(), files)
            index += [
                f"## {t.title}\n",
                t.caption + "\n" if t.caption else "",
                t.to_markdown(),
                "Files: "
                + ", ".join(f"[{ext}]({path})" for ext, path in files)
                + f", [html](html/{t.name}.html)\n",
            ]
        figures = _plots(
            spec, jglue, mtbench, models, built, inputs, tmp, labels, sweep_points or {}
        )
        boot = _bootstrap(spec, jglue, built, tmp, seed, labels)
        if boot is not None:
            files = [("md", "tables/bootstrap.md"), ("csv", "tables/bootstrap.csv")]
            pages.add(
                html.Item("bootstrap", "JGLUE", boot.title, _bootstrap_caption(spec, origin)),
                boot.to_html(),
                files,
            )
            index += [
                "## Paired bootstrap\n",
                boot.to_markdown(),
                "Files: [md](tables/bootstrap.md), [csv](tables/bootstrap.csv), [html](html/bootstrap.html)\n",
            ]
        if figures:
            index.append("## Plots\n")
            for f in figures:
                pages.add(
                    html.Item(f.stem, f.stage, f.title, f"{f.caption} {origin.text}"),
                    html.figure(tmp / "plots" / f.file, f.title),
                    [("png", f"plots/{f.file}")],
                )
                index += [f"![{f.title}](plots/{f.file})\n", f"{f.caption}\n"]
        written = _cards(spec, facts, jglue, mtbench, built, inputs, tmp, models)
        if written:
            index.append("## Model cards\n")
            for m in written:
                card_dir = tmp / "cards" / m
                images = {f"./{p.name}": p for p in card_dir.glob("*.png")}
                caption = (
                    f"Model card of {m} ({labels.get(m, m)}), rendered from cards/{m}/README.md (the file to "
                    f"publish with the model, Hugging Face model-index YAML in its front matter). {origin.text}"
                )
                pages.add(
                    html.Item(
                        f"card_{plots.safe_name(m)}", "Model cards", f"Model card: {m}", caption
                    ),
                    html.card((card_dir / "README.md").read_text(encoding="utf-8"), images),
                    [("md", f"cards/{m}/README.md")],
                )
                index.append(f"- [{m}](cards/{m}/README.md)")
            index.append("")
        pages.close()
        (tmp / "index.md").write_text("\n".join(index), encoding="utf-8")
    return Path(out_dir)


@dataclass(frozen=True)
class Origin:
    """What made a report: its name in the config, its title, and the config files."""

    report: str
    title: str
    configfiles: tuple[str, ...]

    @classmethod
    def of(cls, spec: dict[str, Any], origin: dict[str, Any] | None) -> Origin:
        origin = origin or {}
        return cls(
            str(origin.get("report") or "?"),
            str(spec["title"]),
            tuple(str(f) for f in origin.get("configfiles") or ()),
        )

    @property
    def text(self) -> str:
        files = ", ".join(self.configfiles) or "the default config"
        return f"Made by report '{self.report}' (\"{self.title}\") of the config in {files}."


@dataclass(frozen=True)
class Figure:
    file: str  # under plots/
    stage: str
    title: str
    caption: str

    @property
    def stem(self) -> str:
        return Path(self.file).stem


def _table_caption(
    t: Table, tspec: dict, jglue: pd.DataFrame, mtbench: pd.DataFrame, origin: Origin
) -> str:
    source = tspec["source"]
    if source == "jglue":
        suite = tspec["suite"]
        df = jglue if not suite else jglue[jglue["suite"] == suite]
        suites = ", ".join(sorted(set(df["suite"]))) or "none"
        what = (
            f"JGLUE scores (lm-eval, jp-stable prompt templates) from the scores.csv of suite(s) {suites}; "
            f"metric {tspec['metric'] or 'per column'}, scale ×{tspec['scale']:g}, "
            f"{tspec['decimals']} decimals rounded {tspec['rounding']}"
        )
    else:
        what = (
            f"Japanese MT-Bench scores (turn {tspec['turn']}, mean judge rating per category, 1–10) "
            f"from the judge's score files ({', '.join(sorted({Path(p).parent.name for p in mtbench['path']})) or 'none'})"
        )
    extras = []
    if tspec["stderr"]:
        extras.append("± is lm-eval's standard error")
    if tspec["bold_best"]:
        extras.append("bold marks each column's best value")
    if tspec["published"]:
        extras.append(
            "'(published)' rows are the numbers the model card printed and 'Δ' rows the reproduced minus "
            "the published value (green above, red below)"
        )
    layout = (
        "one row per task, models as columns"
        if tspec["layout"] == "tasks_as_rows"
        else "one row per model"
    )
    return (
        f"{t.title}: table '{t.name}', {layout}. {what}"
        + ("; " + "; ".join(extras) if extras else "")
        + f". {t.caption + ' ' if t.caption else ''}{origin.text}"
    )


def _bootstrap_caption(spec: dict, origin: Origin) -> str:
    b = spec["bootstrap"]
    return (
        f"Paired bootstrap over the documents of each task of table '{b['table']}' "
        f"({b['n_resamples']} resamples, seed from the config): mean A − mean B with its "
        f"{100 * (1 - b['alpha']):g}% percentile interval and two-sided p; 'yes' when the interval "
        f"excludes 0. Read from the per-sample logs (samples_<task>*.jsonl) beside each scores.csv. {origin.text}"
    )


def _tables(
    spec: dict, jglue: pd.DataFrame, mtbench: pd.DataFrame, models: list[str], out: Path
) -> list[Table]:
    names = [t["name"] for t in spec["tables"]]
    if len(set(names)) != len(names):
        raise ConfigError(f"reports.tables: table names repeat: {names}")
    built = []
    for t in spec["tables"]:
        unknown = [m for m in t["models"] if m not in models]
        if unknown:
            raise ConfigError(
                f"reports.tables.{t['name']}.models: {unknown} not among the report's models {models}"
            )
        table = build_table(
            t,
            jglue,
            mtbench,
            models,
            labels=spec["labels"],
            info=spec["model_info"],
            highlight=spec["highlight"],
        )
        for ext, text in (
            ("md", table.to_markdown()),
            ("csv", table.to_csv()),
            ("tex", table.to_latex()),
        ):
            (out / "tables" / f"{table.name}.{ext}").write_text(text, encoding="utf-8")
        built.append(table)
    return built


def _plots(
    spec: dict,
    jglue: pd.DataFrame,
    mtbench: pd.DataFrame,
    models: list[str],
    built: list[Table],
    inputs: dict[str, list[str]],
    out: Path,
    labels: dict[str, str],
    sweep_points: dict[str, dict[str, dict[str, Any]]],
) -> list[Figure]:
    written: list[Figure] = []
    turn = str(spec["radar_turn"])
    mt = mtbench[(mtbench["turn"] == turn) & mtbench["model"].isin(models)]
    if spec["radar"] and not mt.empty:
        order = spec["radar_order"]
        axes = list(RADAR_ORDERS.get(order, order) if isinstance(order, str) else order)
        grid = mt.pivot_table(
            index="model", columns="category", values="score", aggfunc="mean", dropna=False
        )
        grid = grid.reindex(index=[m for m in models if m in set(mt["model"])], columns=axes)
        if grid.isna().all().all():
            log.warning(
                "MT-Bench radar: no valid judge ratings in %s; the chart has no polygons",
                sorted(set(mt["path"])),
            )
        from jaflow.report.tables import CATEGORY_LABELS

        plots.radar(
            grid,
            axes,
            out / "plots" / "mtbench_radar.png",
            title=f"MT-Bench (turn {turn})",
            vmax=10.0,
            labels={**CATEGORY_LABELS, **labels},
        )
        judges = ", ".join(sorted({Path(p).parent.name for p in mt["path"]}))
        written.append(
            Figure(
                "mtbench_radar.png",
                "MT-Bench",
                f"MT-Bench radar chart (turn {turn})",
                f"Japanese MT-Bench radar chart: one polygon per model ({', '.join(labels.get(m, m) for m in grid.index)}), "
                f"the mean rating of judge {judges} per category on a 0–10 scale, turn {turn}, axes clockwise "
                f"from the top in the '{order if isinstance(order, str) else 'configured'}' order.",
            )
        )
    for name in spec["jglue_radar"]:
        table = _table(built, name, "jglue_radar")
        cols = [c for c in table.numbers.columns if c not in _average_labels(spec, name)]
        top = float(pd.DataFrame(table.numbers[cols]).max().max())
        plots.radar(
            table.numbers[cols],
            cols,
            out / "plots" / f"{name}_radar.png",
            title=table.title,
            vmax=1.0 if top <= 1 else 100.0 if top <= 100 else None,
            labels=labels,
        )
        written.append(
            Figure(
                f"{name}_radar.png",
                "JGLUE",
                f"{table.title}: radar chart",
                f"Radar chart of table '{name}': one polygon per model, one axis per task column "
                "(averages left out), on the table's scale.",
            )
        )
    for t, tspec in zip(built, spec["tables"], strict=True):
        if not t.published:
            continue
        fname = f"{plots.safe_name(t.name)}_published_vs_reproduced.png"
        plots.published_vs_reproduced(
            t.published, out / "plots" / fname, title=f"{t.title}: published vs reproduced"
        )
        stage = "MT-Bench" if tspec["source"] == "mtbench" else "JGLUE"
        written.append(
            Figure(
                fname,
                stage,
                f"{t.title}: published vs reproduced",
                f"Each number the model card published for table '{t.name}' (x) against the one this "
                "run reproduced (y), with lm-eval's standard error as error bars where the table has "
                "one; points on the diagonal reproduce the card exactly.",
            )
        )
    if spec["training_curves"]:
        model_dirs = {Path(p).name: Path(p) for p in inputs.get("models", [])}
        for path in inputs.get("log_history", []):
            model = Path(path).parent.name
            selection = model_dirs.get(model, Path("/nonexistent")) / "selection.json"
            step = load.read_json(selection).get("step") if selection.exists() else None
            lisa_path = Path(path).parent / "lisa_layers.csv"
            lisa = load.read_lisa_layers(lisa_path) if lisa_path.exists() else None
            fname = f"train_{plots.safe_name(model)}.png"
            plots.training_curves(
                load.read_log_history(path),
                out / "plots" / fname,
                title=labels.get(model, model),
                selected_step=step,
                lisa=lisa,
            )
            written.append(
                Figure(
                    fname,
                    "Training",
                    f"Training curves: {model}",
                    f"Training of {model}: train and eval loss against optimizer step (from {path})"
                    + (
                        f", the selected checkpoint (step {step}) dashed"
                        if step is not None
                        else ""
                    )
                    + ", the learning rate"
                    + (", and the LISA layers active at each step" if lisa is not None else "")
                    + ".",
                )
            )
    for i, sp in enumerate(spec["sweep_plots"]):
        table = _table(built, sp["table"], f"sweep_plots.{i}.table")
        if sp["column"] not in table.numbers.columns:
            raise ConfigError(
                f"reports.sweep_plots.{i}.column: '{sp['column']}' is not a column of table "
                f"'{sp['table']}' ({list(table.numbers.columns)})"
            )
        if sp["sweep"] not in sweep_points:
            raise ConfigError(
                f"reports.sweep_plots.{i}.sweep: no points given for sweep '{sp['sweep']}' "
                f"(the report rule's sweep_points has: {sorted(sweep_points)})"
            )
        points = plots.sweep_frame(table.numbers[sp["column"]], sweep_points[sp["sweep"]])
        if points.empty:
            raise DataError(
                f"reports.sweep_plots.{i}: table '{sp['table']}' has no rows of the points of sweep "
                f"'{sp['sweep']}' ({sorted(sweep_points[sp['sweep']])})"
            )
        stem = plots.safe_name(f"sweep_{sp['sweep']}_{sp['column']}")
        plots.sweep_lines(points, sp["column"], out / "plots" / f"{stem}.png", title=sp["sweep"])
        params = [c for c in points.columns if c not in ("value", "model")]
        written.append(
            Figure(
                f"{stem}.png",
                "Sweeps",
                f"Sweep {sp['sweep']}: {sp['column']}",
                f"Column '{sp['column']}' of table '{sp['table']}' against each parameter of sweep "
                f"'{sp['sweep']}' ({', '.join(params)}; {len(points)} points): the mean over the other "
                "parameters, the band their min–max.",
            )
        )
        pairs = (
            [tuple(sp["heatmap"])] if sp.get("heatmap") else list(itertools.combinations(params, 2))
        )
        for x, y in pairs:
            hname = plots.safe_name(f"{stem}_{x}_{y}") + ".png"
            plots.sweep_heatmap(
                points, x, y, sp["column"], out / "plots" / hname, title=sp["sweep"]
            )
            written.append(
                Figure(
                    hname,
                    "Sweeps",
                    f"Sweep {sp['sweep']}: {sp['column']} over {x} × {y}",
                    f"Heat map of column '{sp['column']}' of table '{sp['table']}' over {x} and {y} "
                    f"(sweep '{sp['sweep']}', mean over any other parameter).",
                )
            )
    return written


def _average_labels(spec: dict, table: str) -> set[str]:
    t = next(t for t in spec["tables"] if t["name"] == table)
    return {a["label"] for a in t["averages"]}


def _table(built: list[Table], name: str, where: str) -> Table:
    for t in built:
        if t.name == name:
            return t
    raise ConfigError(f"reports.{where}: no table '{name}' (tables: {[t.name for t in built]})")


def _bootstrap(
    spec: dict,
    jglue: pd.DataFrame,
    built: list[Table],
    out: Path,
    seed: int,
    labels: dict[str, str],
) -> Table | None:
    """Paired bootstrap for each pair of models on each column of a JGLUE table."""
    b = spec["bootstrap"]
    if not b:
        return None
    tspec = next((t for t in spec["tables"] if t["name"] == b["table"]), None)
    if tspec is None or tspec["source"] != "jglue":
        raise ConfigError(
            f"reports.bootstrap.table: '{b['table']}' is not a JGLUE table of this report"
        )
    from jaflow.report.tables import Cell, parse_columns

    suite = tspec["suite"]
    df = jglue if not suite else jglue[jglue["suite"] == suite]
    rows, csv_rows = [], []
    alpha = float(b["alpha"])
    for a, c in b["pairs"]:
        for col in parse_columns(tspec):
            samples = []
            for m in (a, c):
                hit = df[
                    (df["model"] == m) & (df["task"] == col.key) & (df["metric"] == col.metric)
                ]
                if hit.empty:
                    raise DataError(
                        f"reports.bootstrap: no scores for model '{m}', task '{col.key}'"
                    )
                row = hit.iloc[0]
                path = load.find_samples(
                    row["path"], col.key, str(row["task_version"]), str(row["template"])
                )
                if path is None:
                    raise DataError(
                        f"reports.bootstrap: no samples_{col.key}*.jsonl next to {hit.iloc[0]['path']}"
                    )
                samples.append(load.read_samples(path, col.metric))
            r = paired_bootstrap(
                *samples, n_resamples=int(b["n_resamples"]), alpha=alpha, seed=seed
            )
            cells = [labels.get(a, a), labels.get(c, c), col.key, col.metric, str(r.n)]
            cells += [
                format_number(v, 4)
                for v in (r.mean_a, r.mean_b, r.diff, r.ci_low, r.ci_high, r.p_value)
            ]
            cells.append("yes" if r.significant else "no")
            rows.append([Cell(text=x) for x in cells])
            rows[-1][-1].bold = r.significant
            csv_rows.append(
                {"model_a": a, "model_b": c, "task": col.key, "metric": col.metric, **r.as_dict()}
            )
    header = [
        "model A",
        "model B",
        "task",
        "metric",
        "n",
        "mean A",
        "mean B",
        "A − B",
        f"CI {100 * (1 - alpha):g}% low",
        "CI high",
        "p",
        "significant",
    ]
    table = Table(name="bootstrap", title="Paired bootstrap", header=header, rows=rows)
    (out / "tables" / "bootstrap.md").write_text(table.to_markdown(), encoding="utf-8")
    pd.DataFrame(csv_rows).to_csv(out / "tables" / "bootstrap.csv", index=False)
    return table


def _cards(
    spec: dict,
    facts: dict,
    jglue: pd.DataFrame,
    mtbench: pd.DataFrame,
    built: list[Table],
    inputs: dict[str, list[str]],
    out: Path,
    models: list[str],
) -> list[str]:
    if not spec["model_cards"]:
        return []
    model_dirs = {Path(p).name: Path(p) for p in inputs.get("models", [])}
    manifests = {Path(p).parent.name: Path(p) for p in inputs.get("manifests", [])}
    written = []
    turn = str(spec["radar_turn"])
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
            m,
            f,
            jglue=jglue,
            mtbench=mtbench,
            tables=tables,
            radar=radar,
            checksums=cards.weight_checksums(d),
            manifest=load.read_json(manifest) if manifest else None,
            selection=load.read_json(d / "selection.json")
            if (d / "selection.json").exists()
            else None,
            merge=load.read_json(d / "merge.json") if (d / "merge.json").exists() else None,
            turn=turn,
        )
        (card_dir / "README.md").write_text(text, encoding="utf-8")
        written.append(m)
    return written
