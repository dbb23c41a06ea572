"""HTML pages of a report: one self-contained page per item, for Snakemake's HTML report.

Snakemake's report shows PNG and HTML results inline but offers every other file (CSV, Markdown)
only as a download. So each table, figure and model card of a report is also written as one HTML
page under `html/` (images embedded as data URIs, no external files), each opening with a caption
that says what it shows and which report, config and files made it. `html/items.json` lists the
pages with their stage, title and caption; the report rule's `report()` markers read it for the
category (one per stage) and the labels, so nothing is parsed back from a file name.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from jaflow.errors import DataError

ITEMS = "items.json"
# the stages, in the order a reader meets them; each is one category of Snakemake's report
STAGES = ("JGLUE", "MT-Bench", "Training", "Sweeps", "Model cards")

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; max-width: 72em; }
p.caption { color: #444; background: #f4f6f8; border-left: 4px solid #8aa; padding: .5em .8em; }
table { border-collapse: collapse; margin: 1em 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
thead th { background: #eef1f4; text-align: center; }
tbody th { text-align: left; font-weight: normal; }
.published { color: #555; font-style: italic; background: #fafafa; }
.delta { font-weight: 600; }
.delta.pos { background: #e3f4e1; color: #1d6b1a; }
.delta.neg { background: #fbe4e2; color: #9b1c13; }
.delta.zero { background: #f1f1f1; }
td.sig-yes { background: #e3f4e1; font-weight: 600; }
img { max-width: 100%; }
pre { background: #f6f8fa; padding: .6em; overflow-x: auto; }
.files a { margin-right: .8em; }
"""


@dataclass(frozen=True)
class Item:
    """One page of the report: what it is, for the reader and for Snakemake's report."""

    name: str  # the file stem under html/
    stage: str  # one of STAGES
    title: str
    caption: str  # plain text

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(
                f"report item {self.name}: unknown stage '{self.stage}' (known: {STAGES})"
            )


def page(item: Item, body: str, files: list[tuple[str, str]] | None = None) -> str:
    """A standalone HTML page: title, caption, body, and the files the item is also written to."""
    links = ""
    if files:
        links = (
            '<p class="files">Also written as: '
            + " ".join(
                f"<code>{html.escape(label)}</code> ({html.escape(path)})" for label, path in files
            )
            + "</p>\n"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(item.title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f'<h1>{html.escape(item.title)}</h1>\n<p class="caption">{html.escape(item.caption)}</p>\n'
        f"{body}\n{links}</body>\n</html>\n"
    )


def data_uri(png: str | Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(png).read_bytes()).decode("ascii")


def figure(png: str | Path, alt: str) -> str:
    return f'<figure><img src="{data_uri(png)}" alt="{html.escape(alt)}"></figure>'


def markdown(text: str, images: dict[str, Path] | None = None) -> str:
    """Markdown (CommonMark + tables) as HTML; images named in `images` are embedded."""
    from markdown_it import MarkdownIt

    images = images or {}
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(text)
    for tok in tokens:
        for child in tok.children or []:
            if child.type == "image":
                src = str(child.attrGet("src") or "")
                if src in images:
                    child.attrSet("src", data_uri(images[src]))
    return md.renderer.render(tokens, md.options, {})


def card(text: str, images: dict[str, Path] | None = None) -> str:
    """A model card (README.md with YAML front matter): the front matter as a block, the rest rendered."""
    front = ""
    if text.startswith("---\n"):
        end = text.find("\n---\n", 4)
        if end < 0:
            raise DataError("model card: front matter opened with '---' is never closed")
        front, text = text[4:end], text[end + 5 :]
    meta = (
        (
            "<details><summary>Hugging Face metadata (YAML front matter: base_model, model-index)</summary>"
            f"<pre>{html.escape(front)}</pre></details>\n"
        )
        if front
        else ""
    )
    return meta + markdown(text, images)


class Pages:
    """Collects the pages of one report under `html/` and writes `items.json` at the end."""

    def __init__(self, out_dir: Path):
        self.dir = out_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.items: list[Item] = []

    def add(self, item: Item, body: str, files: list[tuple[str, str]] | None = None) -> Path:
        if any(i.name == item.name for i in self.items):
            raise DataError(f"report: two pages named '{item.name}'")
        path = self.dir / f"{item.name}.html"
        path.write_text(page(item, body, files), encoding="utf-8")
        self.items.append(item)
        return path

    def close(self) -> None:
        order = {s: i for i, s in enumerate(STAGES)}
        items = sorted(self.items, key=lambda i: order[i.stage])
        (self.dir / ITEMS).write_text(
            json.dumps({i.name: asdict(i) for i in items}, ensure_ascii=False, indent=1) + "\n",
            encoding="utf-8",
        )


def read_item(html_dir: str | Path, name: str) -> dict[str, str]:
    """The record of page `name` in `html_dir/items.json` (for the report rule's report() markers)."""
    path = Path(html_dir) / ITEMS
    items = json.loads(path.read_text(encoding="utf-8"))
    if name not in items:
        raise DataError(f"{path}: no item '{name}' (items: {sorted(items)})")
    return items[name]
