"""Report pages for the browser, the published-vs-reproduced figure, spec checks at DAG build."""

from __future__ import annotations

import copy
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from jaflow.config import load_experiment, load_yaml, validate_config
from jaflow.config.sweeps import expand_sweeps
from jaflow.errors import ConfigError
from jaflow.report import cards, load
from jaflow.report.build import build_report
from jaflow.report.check import check_report_specs
from jaflow.report.params import quiet
from jaflow.report.sweeps import report_sweep_points

DATA = Path(__file__).parent / "data" / "report"
REPO = Path(__file__).resolve().parents[1]


class Cells(HTMLParser):
    """(tag, classes, text) of every th/td, and the img srcs."""

    def __init__(self):
        super().__init__()
        self.cells: list[tuple[str, str, str]] = []
        self.imgs: list[str] = []
        self._open: list | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("td", "th"):
            self._open = [tag, a.get("class") or "", ""]
        if tag == "img":
            self.imgs.append(a["src"])

    def handle_data(self, data):
        if self._open is not None:
            self._open[2] += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._open is not None:
            self.cells.append(tuple(self._open))
            self._open = None


def parse(path: Path) -> Cells:
    p = Cells()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def seed000_report(tmp_path, **spec_changes):
    scores = sorted(str(p) for p in DATA.glob("seed000/jglue/*/*/scores.csv"))
    spec = {
        "title": "openorca_stx reproduction",
        "labels": {"openorca_stx": "lightblue/openorca_stx"},
        "tables": [
            {
                "name": "jglue",
                "title": "JGLUE",
                "metric": "acc",
                "stderr": True,
                "decimals": 3,
                "columns": [{"task": "jsquad", "metric": "exact_match"}, "jnli", "marc_ja"],
                "averages": [{"label": "average"}],
                "published": {"openorca_stx": {"jsquad": 0.836, "jnli": 0.50, "average": 0.70}},
            }
        ],
        **spec_changes,
    }
    return build_report(
        spec,
        {"jglue": scores},
        tmp_path / "r",
        models=["openorca", "openorca_stx"],
        origin={"report": "stx", "configfiles": ["config/experiments/openorca_stx.yaml"]},
    )


def test_tables_are_html_pages_with_published_and_delta_marked(tmp_path):
    out = seed000_report(tmp_path)
    items = json.loads((out / "html/items.json").read_text())
    assert items["jglue"]["stage"] == "JGLUE" and items["jglue"]["title"] == "JGLUE"
    caption = items["jglue"]["caption"]
    assert (
        "report 'stx'" in caption
        and "config/experiments/openorca_stx.yaml" in caption
        and "stx4" in caption
    )
    page = parse(out / "html/jglue.html")
    texts = [c[2] for c in page.cells]
    assert "lightblue/openorca_stx (published)" in texts
    deltas = [c for c in page.cells if "delta" in c[1]]
    # jnli: reproduced 0.480 vs published 0.500 -> -0.020, shown red; jsquad 0.836 -> 0
    assert ("td", "delta neg", "-0.020") in deltas and ("td", "delta zero", "0.000") in deltas
    assert any(c[1] == "published" and c[2] == "0.836" for c in page.cells)
    html_text = (out / "html/jglue.html").read_text()
    assert '<p class="caption">' in html_text and "tables/jglue.csv" in html_text
    assert "[html](html/jglue.html)" in (out / "index.md").read_text()


def test_published_vs_reproduced_figure(tmp_path):
    out = seed000_report(tmp_path)
    png = out / "plots/jglue_published_vs_reproduced.png"
    import matplotlib.image as mpimg

    img = mpimg.imread(png)
    assert img.shape[0] >= 400 and img[..., :3].std() > 0.02
    items = json.loads((out / "html/items.json").read_text())
    fig = items["jglue_published_vs_reproduced"]
    assert fig["stage"] == "JGLUE" and "standard error" in fig["caption"]
    src = parse(out / "html/jglue_published_vs_reproduced.html").imgs
    assert len(src) == 1 and src[0].startswith("data:image/png;base64,")


def test_bootstrap_table_uses_labels_and_links(tmp_path):
    import numpy as np

    root = tmp_path / "in"
    paths = []
    for k, m in enumerate(["base", "tuned"]):
        d = root / m
        d.mkdir(parents=True)
        vals = (np.random.default_rng(k).random(100) < 0.3 + 0.5 * k).astype(float)
        (d / "samples_jnli.jsonl").write_text(
            "".join(json.dumps({"doc_id": i, "acc": v}) + "\n" for i, v in enumerate(vals))
        )
        (d / "scores.csv").write_text(
            f"model,suite,task,metric,value,stderr,n\n{m},s,jnli,acc,{vals.mean()},0.05,100\n"
        )
        paths.append(str(d / "scores.csv"))
    spec = {
        "labels": {"tuned": "Tuned model", "base": "Base model"},
        "tables": [{"name": "t", "metric": "acc", "columns": ["jnli"]}],
        "bootstrap": {"table": "t", "pairs": [["tuned", "base"]], "n_resamples": 500},
    }
    out = build_report(spec, {"jglue": paths}, tmp_path / "r", models=["base", "tuned"])
    index = (out / "index.md").read_text()
    assert "| Tuned model | Base model | jnli | acc | 100 |" in index
    assert "[csv](tables/bootstrap.csv)" in index and (out / "html/bootstrap.html").exists()
    assert "Tuned model" in (out / "tables/bootstrap.md").read_text()


def test_card_page_renders_markdown_and_embeds_the_radar(tmp_path):
    from jaflow.report import html

    radar = tmp_path / "japanese_mt_bench.png"
    radar.write_bytes(b"\x89PNG\r\n\x1a\n fake but bytes")
    text = "---\nbase_model: [x]\n---\n# tuned\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n![MT-Bench](./japanese_mt_bench.png)\n"
    body = html.card(text, {"./japanese_mt_bench.png": radar})
    assert "<h1>tuned</h1>" in body and "<td>1</td>" in body and "base_model: [x]" in body
    assert 'src="data:image/png;base64,' in body and "---" not in body.split("</details>")[1]


def test_card_base_is_the_model_trained_from_and_losses_are_short():
    config = validate_config(load_yaml(REPO / "config/config.yaml"))
    graph = load_experiment(config).graph
    facts = cards.model_facts(graph, config, ["tiny_qlora", "tiny_moe_lisa"])
    assert facts["tiny_qlora"]["base_models"] == ["results/demo/tiny/models/llama"]
    assert facts["tiny_moe_lisa"]["base_models"] == ["tiny_moe"]  # the MoE it was trained from
    text = cards.render_card(
        "tiny_moe_lisa",
        facts["tiny_moe_lisa"],
        jglue=load.read_jglue_scores([]),
        mtbench=load.read_mtbench_scores([]),
        tables=[],
        radar=None,
        checksums={},
        manifest=None,
        selection={"step": 5, "metric": "eval_loss", "value": 5.786489009857178},
        merge=None,
    )
    assert yaml.safe_load(text.split("---\n")[1])["base_model"] == ["tiny_moe"]
    assert (
        "LISA fine-tune of `tiny_moe` (base: `tiny_moe`, built from `results/demo/tiny/models/llama`)"
        in text
    )
    assert "eval_loss = 5.786," in text


def test_params_show_a_description_but_compare_in_full():
    q = quiet({"spec": {"tables": [1, 2]}}, "report 'demo' settings")
    assert f"{q}" == "report 'demo' settings" and repr(q) == repr({"spec": {"tables": [1, 2]}})
    import pickle

    back = pickle.loads(pickle.dumps(q))
    assert type(back) is dict and back == {"spec": {"tables": [1, 2]}}


def demo_config() -> dict:
    return validate_config(load_yaml(REPO / "config/config.yaml"))


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda r: r["tables"][1]["averages"].__setitem__(
                0, {"label": "average", "over": ["jnli", "xnli"]}
            ),
            r"reports\.demo\.tables\.1\.averages\.0\.over: unknown column 'xnli'",
        ),
        (
            lambda r: r["tables"][1]["columns"].append("jaqket_v2"),
            r"reports\.demo\.tables\.1\.columns\.4\.task: unknown column 'jaqket_v2'",
        ),
        (
            lambda r: r["tables"][2]["columns"].append("poetry"),
            r"reports\.demo\.tables\.2\.columns\.0\.task: unknown column 'poetry'",
        ),
        (
            lambda r: r["tables"][0].__setitem__("models", ["tiny_llama", "nobody"]),
            r"reports\.demo\.tables\.0\.models: unknown model 'nobody'",
        ),
        (
            lambda r: r["tables"][1].__setitem__("published", {"tiny_qlora": {"jnli": 0.5}}),
            r"reports\.demo\.tables\.1\.published\.tiny_qlora: unknown column 'jnli'",
        ),
        (
            lambda r: r["bootstrap"].__setitem__("pairs", [["tiny_qlora", "tiny_moe"]]),
            r"reports\.demo\.bootstrap\.pairs\.0: unknown model 'tiny_moe'",
        ),
        (
            lambda r: r.__setitem__("jglue_radar", ["mtbench"]),
            r"reports\.demo\.jglue_radar\.0: unknown JGLUE table 'mtbench'",
        ),
        (
            lambda r: r["labels"].__setitem__("nobody", "x"),
            r"reports\.demo\.labels: unknown model 'nobody'",
        ),
    ],
)
def test_report_specs_are_checked_when_the_dag_is_built(change, message):
    config = demo_config()
    graph = load_experiment(config).graph
    check_report_specs(config, graph)  # the demo's own report is fine
    bad = copy.deepcopy(config)
    change(bad["reports"]["demo"])
    with pytest.raises(ConfigError, match=message):
        check_report_specs(bad, graph)


def test_sweep_points_travel_as_data():
    config = demo_config()
    config["sweeps"] = {
        "lr": {
            "model": "tiny_judge",
            "grid": {"train.learning_rate": [0.001, 0.003], "train.max_steps": [10]},
        }
    }
    config["reports"]["demo"]["sweep_plots"] = [
        {"sweep": "lr", "table": "jglue", "column": "average"}
    ]
    expand_sweeps(config)
    points = report_sweep_points(config, "demo")
    assert points == {
        "lr": {
            "lr~learning_rate=0.001~max_steps=10": {"learning_rate": 0.001, "max_steps": 10},
            "lr~learning_rate=0.003~max_steps=10": {"learning_rate": 0.003, "max_steps": 10},
        }
    }
    config["reports"]["demo"]["sweep_plots"][0]["sweep"] = "nope"
    with pytest.raises(
        ConfigError, match=r"reports\.demo\.sweep_plots\.0\.sweep: unknown sweep 'nope'"
    ):
        report_sweep_points(config, "demo")
    assert re.search(
        "unknown sweep",
        str(
            pytest.raises(
                ConfigError, check_report_specs, config, load_experiment(config).graph
            ).value
        ),
    )


def test_console_progress_lines_are_concise(tmp_path):
    """A job's jaflow log lines reach the console it was started from: few, short, prefixed."""
    import subprocess
    import sys

    log = tmp_path / "logs" / "train" / "m.log"
    code = f"""
import logging
from jaflow.logs import log_to
with log_to({str(log)!r}):
    for i in range(50):
        logging.getLogger("jaflow.train").info("step %d", i)
    logging.getLogger("jaflow.train").warning("x" * 300)
    logging.getLogger("transformers").warning("not ours")
    print("to the log only")
"""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    lines = proc.stderr.splitlines()
    assert lines[0] == "[train/m] step 0" and len(lines) == 2, lines
    assert lines[1].startswith("[train/m] xxx") and lines[1].endswith("...") and len(lines[1]) < 180
    assert (
        "to the log only" in log.read_text() and "not ours" in log.read_text() and not proc.stdout
    )
