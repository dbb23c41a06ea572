"""Tables laid out like the seed model cards, rendered as Markdown, CSV and LaTeX.

A table spec (config `reports.<r>.tables[]`, documented in config/schema.yaml) says which
tasks or MT-Bench categories are columns, which metric, scale, decimals and rounding each
uses, which averages to add, whether models are rows or columns, and what is bold. Numbers
are formatted from their decimal text (`repr`), so 0.7405 rounds half-up to 0.741 as a
person would, not as binary floating point would.
"""

from __future__ import annotations

import csv
import html
import io
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Any

import pandas as pd

from jaflow.config.schema import filled
from jaflow.errors import ConfigError, DataError
from jaflow.evaluate.mtbench.categories import CATEGORIES, DISPLAY_NAMES, RADAR_ORDER

# MT-Bench categories: the card table's (alphabetical) order, FastChat's radar order and display
# names are the MT-Bench stage's facts.
MTBENCH_CATEGORIES = CATEGORIES
MTBENCH_RADAR_ORDER = RADAR_ORDER
CATEGORY_LABELS = DISPLAY_NAMES

ROUNDING = {"half_up": ROUND_HALF_UP, "half_even": ROUND_HALF_EVEN}
MISSING = "-"


@dataclass
class Column:
    key: str  # jglue task or MT-Bench category
    label: str
    metric: str | None = None
    scale: float = 1.0
    decimals: int = 3


@dataclass
class Average:
    label: str
    over: list[str]  # column labels
    position: str = "last"
    decimals: int = 3


@dataclass
class Cell:
    value: float | None = None
    stderr: float | None = None
    text: str = MISSING
    bold: bool = False
    kind: str = ""  # "published" or "delta" for the cells of a card's published numbers

    @property
    def display(self) -> str:
        return f"**{self.text}**" if self.bold and self.text not in ("", MISSING) else self.text


@dataclass
class Table:
    """A rendered grid: header and rows of text cells (bold flags kept apart from the text)."""

    name: str
    title: str
    header: list[str]
    rows: list[list[Cell]]
    caption: str = ""
    numbers: pd.DataFrame = field(default_factory=pd.DataFrame)  # rows x value columns, unrounded
    header_kinds: list[str] = field(
        default_factory=list
    )  # per header cell: "", "published", "delta"
    published: list[dict[str, Any]] = field(default_factory=list)  # points of the published figure

    def to_html(self) -> str:
        """An HTML table: bold kept, published cells and Δ cells marked (Δ coloured by sign)."""

        def td(c: Cell, tag: str = "td") -> str:
            text = html.escape(c.text)
            if c.bold and c.text not in ("", MISSING):
                text = f"<strong>{text}</strong>"
            cls = [c.kind] if c.kind else []
            if c.kind == "delta" and c.value is not None:
                cls.append("pos" if c.value > 0 else "neg" if c.value < 0 else "zero")
            attr = f' class="{" ".join(cls)}"' if cls else ""
            return f"<{tag}{attr}>{text}</{tag}>"

        kinds = self.header_kinds or [""] * len(self.header)
        head = "".join(
            td(Cell(text=h, kind=k), "th") for h, k in zip(self.header, kinds, strict=True)
        )
        body = "\n".join(
            "<tr>" + td(row[0], "th") + "".join(td(c) for c in row[1:]) + "</tr>"
            for row in self.rows
        )
        return (
            f'<table class="jaflow-table" id="table-{html.escape(self.name)}">\n'
            f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>\n"
        )

    def to_markdown(self) -> str:
        lines = ["| " + " | ".join(self.header) + " |", "|" + "---|" * len(self.header)]
        lines += ["| " + " | ".join(c.display for c in row) + " |" for row in self.rows]
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.header)
        writer.writerows([c.text for c in row] for row in self.rows)
        return buf.getvalue()

    def to_latex(self) -> str:
        def cell(c: Cell) -> str:
            text = latex_escape(c.text)
            return f"\\textbf{{{text}}}" if c.bold and c.text not in ("", MISSING) else text

        cols = "l" + "r" * (len(self.header) - 1)
        lines = [
            "% needs \\usepackage{booktabs}",
            "\\begin{table}[ht]",
            "\\centering",
            f"\\caption{{{latex_escape(self.title)}}}",
            f"\\label{{tab:{self.name}}}",
            f"\\begin{{tabular}}{{{cols}}}",
            "\\toprule",
            " & ".join(latex_escape(h) for h in self.header) + " \\\\",
            "\\midrule",
        ]
        lines += [" & ".join(cell(c) for c in row) + " \\\\" for row in self.rows]
        lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
        return "\n".join(lines) + "\n"


_LATEX = {
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\\": r"\textbackslash{}",
    "±": r"$\pm$",
    "Δ": r"$\Delta$",
    "−": r"$-$",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in text)


def format_number(
    value: float | Decimal | None,
    decimals: int,
    rounding: str = "half_up",
    trailing_zeros: bool = True,
    sign: bool = False,
) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return MISSING
    d = value if isinstance(value, Decimal) else Decimal(repr(float(value)))
    q = d.quantize(Decimal(1).scaleb(-decimals), rounding=ROUNDING[rounding])
    if q == 0:
        q = abs(q)
    text = f"{q:.{decimals}f}"
    if not trailing_zeros and "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"+{text}" if sign and q > 0 else text


def _dec(x: float) -> Decimal:
    return Decimal(repr(float(x)))


# -- spec -----------------------------------------------------------------------------------


def parse_columns(spec: dict[str, Any]) -> list[Column]:
    """Columns of a table spec; a string is shorthand for {task: <string>}."""
    source = spec["source"]
    raw = spec["columns"] or (
        [{"task": c} for c in MTBENCH_CATEGORIES] if source == "mtbench" else []
    )
    if not raw:
        raise ConfigError(
            f"reports.tables.{spec.get('name')}.columns: a JGLUE table needs at least one column"
        )
    cols = []
    for i, c in enumerate(raw):
        c = {"task": c} if isinstance(c, str) else dict(c)
        if "task" not in c:
            raise ConfigError(f"reports.tables.{spec.get('name')}.columns[{i}]: needs 'task'")
        key = str(c["task"]).lower() if source == "mtbench" else str(c["task"])
        default_label = CATEGORY_LABELS.get(key, key) if source == "mtbench" else "{task}"
        cols.append(
            Column(
                key=key,
                label=c.get("label") or default_label,
                metric=c.get("metric") or spec["metric"],
                scale=float(c.get("scale", spec["scale"])),
                decimals=int(c.get("decimals", spec["decimals"])),
            )
        )
        if source == "jglue" and not cols[-1].metric:
            raise ConfigError(
                f"reports.tables.{spec.get('name')}.columns[{i}]: no metric (set 'metric' on the column or the table)"
            )
    return cols


# -- numbers --------------------------------------------------------------------------------


def _jglue_numbers(
    spec: dict, cols: list[Column], scores: pd.DataFrame, models: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame, list[str], set[str]]:
    """Scaled values and stderrs (rows = models, columns = column index), column labels, and the
    models that have any score row for the table."""
    suite = spec["suite"]
    df = scores if not suite else scores[scores["suite"] == suite]
    values = pd.DataFrame(index=models, columns=range(len(cols)), dtype=object)
    errs = pd.DataFrame(index=models, columns=range(len(cols)), dtype=object)
    labels: list[str | None] = [None] * len(cols)
    present: set[str] = set()
    for j, col in enumerate(cols):
        sel = df[(df["task"] == col.key) & (df["metric"] == col.metric)]
        for m in models:
            rows = sel[sel["model"] == m]
            if len(rows) > 1:
                where = ", ".join(sorted(set(rows["path"])))
                raise DataError(
                    f"table {spec['name']}: {len(rows)} scores for model '{m}', task '{col.key}', metric "
                    f"'{col.metric}' ({where}); set the table's 'suite' to pick one"
                )
            if len(rows) == 1:
                present.add(m)
                r = rows.iloc[0]
                values.loc[m, j] = _dec(r["value"]) * _dec(col.scale)
                errs.loc[m, j] = (
                    None if pd.isna(r["stderr"]) else _dec(r["stderr"]) * _dec(col.scale)
                )
                if labels[j] is None:
                    labels[j] = _fill_label(col.label, r)
        if labels[j] is None:
            labels[j] = col.label.replace("{task}", col.key).replace("{metric}", col.metric or "")
    return values, errs, [str(x) for x in labels], present


def _fill_label(label: str, row: pd.Series) -> str:
    fields = {
        k: ("" if pd.isna(row.get(k)) else row.get(k))
        for k in ("task", "task_version", "template", "metric")
    }
    nf = row.get("num_fewshot")
    fields["num_fewshot"] = "" if pd.isna(nf) else int(nf)
    try:
        return label.format(**fields)
    except (KeyError, IndexError, ValueError) as e:
        raise ConfigError(
            f"column label {label!r}: unknown placeholder ({e}); use task, task_version, template, num_fewshot, metric"
        ) from None


def _mtbench_numbers(
    spec: dict, cols: list[Column], scores: pd.DataFrame, models: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame, list[str], set[str]]:
    """As _jglue_numbers; a category whose ratings all failed to parse (empty score) prints '-'."""
    turn = str(spec["turn"])
    df = scores[scores["turn"] == turn]
    values = pd.DataFrame(index=models, columns=range(len(cols)), dtype=object)
    errs = pd.DataFrame(index=models, columns=range(len(cols)), dtype=object)
    present: set[str] = set()
    for j, col in enumerate(cols):
        for m in models:
            rows = df[(df["model"] == m) & (df["category"] == col.key)]
            if len(rows) > 1:
                raise DataError(
                    f"table {spec['name']}: {len(rows)} rows for model '{m}', category '{col.key}', turn {turn}"
                )
            if len(rows) == 1:
                present.add(m)
                if not pd.isna(rows.iloc[0]["score"]):
                    values.loc[m, j] = _dec(rows.iloc[0]["score"]) * _dec(col.scale)
    return values, errs, [c.label for c in cols], present


def parse_averages(spec: dict, labels: list[str], cols: list[Column]) -> list[Average]:
    out = []
    for i, a in enumerate(spec["averages"]):
        over = a.get("over") or labels
        resolved = []
        for name in over:
            # a column may be named by its label or its task
            hits = [lab for lab, c in zip(labels, cols, strict=True) if name in (lab, c.key)]
            if not hits:
                raise ConfigError(
                    f"reports.tables.{spec['name']}.averages[{i}].over: no column '{name}' (columns: {labels})"
                )
            resolved.append(hits[0])
        out.append(
            Average(
                label=a["label"],
                over=resolved,
                position=a["position"],
                decimals=int(a.get("decimals", spec["decimals"])),
            )
        )
    return out


# -- building -------------------------------------------------------------------------------


def build_table(
    spec: dict[str, Any],
    jglue: pd.DataFrame,
    mtbench: pd.DataFrame,
    models: list[str],
    labels: dict[str, str] | None = None,
    info: dict[str, dict[str, Any]] | None = None,
    highlight: list[str] | None = None,
) -> Table:
    """Build one table of the config from the tidy scores."""
    spec = filled("report_table", spec, f"reports.tables.{spec.get('name')}")
    labels, info, highlight = labels or {}, info or {}, highlight or []
    source = spec["source"]
    if source not in ("jglue", "mtbench"):
        raise ConfigError(
            f"reports.tables.{spec.get('name')}.source: '{source}' is not jglue or mtbench"
        )
    cols = parse_columns(spec)
    models = list(spec["models"] or models)
    builder = _jglue_numbers if source == "jglue" else _mtbench_numbers
    values, errs, col_labels, present = builder(
        spec, cols, jglue if source == "jglue" else mtbench, models
    )
    if spec["drop_missing"]:
        keep = [m for m in models if m in present]
        values, errs, models = values.loc[keep], errs.loc[keep], keep

    rounding = spec["rounding"]
    zeros = spec["trailing_zeros"]
    averages = parse_averages(spec, col_labels, cols)
    numbers = pd.DataFrame(index=models)
    for j, lab in enumerate(col_labels):
        numbers[lab] = values[j].map(lambda v: None if v is None or pd.isna(v) else float(v))

    # value columns in display order: averages placed first or last
    vcols: list[tuple[str, int, Average | None]] = []  # (label, decimals, average)
    vcols += [(a.label, a.decimals, a) for a in averages if a.position == "first"]
    vcols += (
        [(lab, c.decimals, None) for lab, c in zip(col_labels, cols, strict=True)]
        if spec["show_columns"]
        else []
    )
    vcols += [(a.label, a.decimals, a) for a in averages if a.position != "first"]

    def avg_value(m: str, a: Average) -> Decimal | None:
        idx = [col_labels.index(lab) for lab in a.over]
        vals = [values.loc[m, j] for j in idx]
        if any(v is None or pd.isna(v) for v in vals):
            return None
        return sum(vals, Decimal(0)) / len(vals)

    def row_values(m: str) -> list[Decimal | None]:
        out = []
        for lab, _, a in vcols:
            v = avg_value(m, a) if a else values.loc[m, col_labels.index(lab)]
            out.append(None if v is None or pd.isna(v) else v)
        return out

    for lab, _, a in vcols:
        if a:
            numbers[lab] = [None if (v := avg_value(m, a)) is None else float(v) for m in models]

    info_cols = list(spec["info_columns"])
    show_err = bool(spec["stderr"])
    published = spec["published"]
    for m in published:
        if m not in models:
            raise ConfigError(
                f"reports.tables.{spec['name']}.published: model '{m}' has no scores in this table (models: {models})"
            )

    bold_rows = set(highlight) if spec["highlight"] else set()
    body: list[tuple[str, list[Cell]]] = []  # (model | published | diff, cells)
    for m in models:
        vals = row_values(m)
        cells = [Cell(text=labels.get(m, m))]
        cells += [Cell(text=str(info.get(m, {}).get(k, MISSING))) for k in info_cols]
        for (lab, dec, a), v in zip(vcols, vals, strict=True):
            err = None if a else errs.loc[m, col_labels.index(lab)]
            text = format_number(v, dec, rounding, zeros)
            if show_err and err is not None and not pd.isna(err) and v is not None:
                text += " ± " + format_number(err, dec, rounding, zeros)
            cells.append(
                Cell(
                    value=None if v is None else float(v),
                    stderr=None if err is None or pd.isna(err) else float(err),
                    text=text,
                )
            )
        if m in bold_rows:
            for c in cells:
                c.bold = True
        body.append(("model", cells))
        if m in published:
            pub = published[m]
            unknown = [k for k in pub if k not in [lab for lab, _, _ in vcols]]
            if unknown:
                raise ConfigError(
                    f"reports.tables.{spec['name']}.published.{m}: unknown column(s) {unknown} (columns: {[v[0] for v in vcols]})"
                )
            pcells = [Cell(text=f"{labels.get(m, m)} (published)", kind="published")]
            pcells += [Cell(text="", kind="published") for _ in info_cols]
            dcells = [Cell(text=f"{labels.get(m, m)} (Δ reproduced − published)", kind="delta")]
            dcells += [Cell(text="", kind="delta") for _ in info_cols]
            for (lab, dec, _), v in zip(vcols, vals, strict=True):
                p = pub.get(lab)
                pcells.append(
                    Cell(
                        value=p,
                        text=MISSING if p is None else format_number(p, dec, rounding, zeros),
                        kind="published",
                    )
                )
                if p is None or v is None:
                    dcells.append(Cell(text=MISSING, kind="delta"))
                else:
                    shown = Decimal(format_number(v, dec, rounding))
                    diff = shown - _dec(p)
                    dcells.append(
                        Cell(
                            value=float(diff),
                            text=format_number(diff, dec, rounding, zeros, sign=True),
                            kind="delta",
                        )
                    )
            body += [("published", pcells), ("diff", dcells)]

    if spec["bold_best"]:
        model_rows = [cells for kind, cells in body if kind == "model"]
        start = 1 + len(info_cols)
        for j in range(start, start + len(vcols)):
            shown = [
                Decimal(c.text.split(" ± ")[0]) if c.text != MISSING else None
                for c in (r[j] for r in model_rows)
            ]
            present = [s for s in shown if s is not None]
            if present:
                best = max(present)
                for r, s in zip(model_rows, shown, strict=True):
                    if s == best:
                        r[j].bold = True

    header = [spec["header"]] + info_cols + [lab for lab, _, _ in vcols]
    rows = [cells for _, cells in body]
    if spec["layout"] == "tasks_as_rows":
        header = [header[0]] + [r[0].text for r in rows]
        row_names = [*info_cols, *(v[0] for v in vcols)]
        rows = [[Cell(text=h)] + [r[i] for r in rows] for i, h in enumerate(row_names, start=1)]
        kinds = [r[0].kind for r in [cells for _, cells in body]]
        header_kinds = ["", *kinds]
    else:
        header_kinds = [""] * len(header)
    if spec["layout"] not in ("models_as_rows", "tasks_as_rows"):
        raise ConfigError(
            f"reports.tables.{spec['name']}.layout: '{spec['layout']}' is not models_as_rows or tasks_as_rows"
        )
    return Table(
        name=spec["name"],
        title=spec.get("title", spec["name"]),
        header=header,
        rows=rows,
        caption=spec["caption"],
        numbers=numbers,
        header_kinds=header_kinds,
        published=_published_points(
            spec, published, models, vcols, values, errs, col_labels, labels
        ),
    )


def _published_points(
    spec, published, models, vcols, values, errs, col_labels, labels
) -> list[dict[str, Any]]:
    """(model, column, published, reproduced, stderr) for the published-vs-reproduced figure."""
    out = []
    for m in models:
        for lab, _, a in vcols:
            p = (published.get(m) or {}).get(lab)
            if p is None:
                continue
            if a:
                idx = [col_labels.index(x) for x in a.over]
                vals = [values.loc[m, j] for j in idx]
                v = (
                    None
                    if any(x is None or pd.isna(x) for x in vals)
                    else float(sum(vals, Decimal(0)) / len(vals))
                )
                err = None
            else:
                j = col_labels.index(lab)
                v = (
                    None
                    if values.loc[m, j] is None or pd.isna(values.loc[m, j])
                    else float(values.loc[m, j])
                )
                e = errs.loc[m, j]
                err = None if e is None or pd.isna(e) else float(e)
            out.append(
                {
                    "model": m,
                    "label": labels.get(m, m),
                    "column": lab,
                    "published": float(p),
                    "reproduced": v,
                    "stderr": err,
                }
            )
    return out
