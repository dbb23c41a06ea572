"""Report stage: tables from fixed score files, plots, paired bootstrap, model cards."""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import yaml

from jaflow.config import validate_config
from jaflow.errors import ConfigError, DataError
from jaflow.report import cards, load, plots
from jaflow.report.build import build_report
from jaflow.report.stats import paired_bootstrap
from jaflow.report.tables import build_table, format_number

DATA = Path(__file__).parent / "data" / "report"

# Seed 004's tables as the card prints them (markdown rows, card text verbatim).
SEED004_MTBENCH = """\
|Model|Size|Coding|Extraction|Humanities|Math|Reasoning|Roleplay|STEM|Writing|avg_score|
|---|---|---|---|---|---|---|---|---|---|---|
| Swallow-7b-instruct-hf | 7B | 2.0 | 4.6 | 5.4 | 1.7 | 2.8 | 5.0 | 5.9 | 6.9 | 4.2875 |
| Superswallow-7b-v0.1 | 7B | 2.0 | 5.1 | 7.8 | 2.1 | 3.6 | 6.2 | 7.3 | 7.5 | 5.2000 |
| Superswallow-7b-v0.2 | 7B | 2.2 | 5.8 | 6.7 | 2.5 | 4.3 | 5.5 | 6.6 | 5.8 | 4.9250 |
| Superswallow-7b-v0.3 | 7B | 2.1 | 4.6 | 8.3 | 2.1 | 5.0 | 6.3 | 7.7 | 8.9 | 5.6250 |
| **This model** | **4x7B** | **2.0** | **3.4** | **7.5** | **1.9** | **2.6** | **5.5** | **6.3** | **7.5** | **4.5875** |
"""
SEED004_JGLUE = """\
|Model|Size|jsquad(exact_match)|jcommonsenseqa(acc)|jnli(acc)|marc_ja(acc)|average|
|---|---|---|---|---|---|---|
| Swallow-7b-instruct-hf | 7B | 0.757 | 0.831 | 0.212 | 0.945 | 0.686 |
| Superswallow-7b-v0.1 | 7B | 0.441 | 0.846 | 0.374 | 0.966 | 0.657 |
| Superswallow-7b-v0.2 | 7B | 0.722 | 0.846 | 0.381 | 0.964 | 0.728 |
| Superswallow-7b-v0.3 | 7B | 0.721 | 0.850 | 0.362 | 0.964 | 0.724 |
| **This model without fine-tuning** | **4x7B** | **0.674** | **0.809** | **0.333** | **0.952** | **0.692** |
| **This model** | **4x7B** | **0.741** | **0.806** | **0.385** | **0.948** | **0.719** |
"""
SEED000_JGLUE = """\
Model Name Open-Orca/OpenOrcaxOpenChat-Preview2-13B lightblue/openorca_stx
jsquad-1.1-0.3 0.692 0.836
jcommonsenseqa-1.1-0.3 0.831 0.782
jnli-1.1-0.3 0.504 0.48
marc_ja-1.1-0.3 0.936 0.959
"""


def seed_reports() -> dict:
    """The seed cards' report specs, validated against config/schema.yaml (defaults filled)."""
    config = {"reports": yaml.safe_load((DATA / "seed_reports.yaml").read_text())["reports"]}
    return validate_config(config)["reports"]


SEEDS = seed_reports()


def seed_table(report: str, table: str, jglue: pd.DataFrame, mtbench: pd.DataFrame, **changes):
    r = SEEDS[report]
    spec = dict(next(t for t in r["tables"] if t["name"] == table), **changes)
    return build_table(
        spec,
        jglue,
        mtbench,
        r["models"],
        labels=r["labels"],
        info=r["model_info"],
        highlight=r["highlight"],
    )


def md_cells(text: str) -> list[list[str]]:
    """Markdown table rows as lists of cell texts (separator row dropped)."""
    rows = [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in text.strip().splitlines()
    ]
    return [r for r in rows if not all(set(c) <= set("-:") for c in r)]


@pytest.fixture(scope="module")
def seed004():
    mt = load.read_mtbench_scores(sorted((DATA / "seed004" / "mtbench").glob("*.csv")))
    jg = load.read_jglue_scores(sorted(DATA.glob("seed004/jglue/*/*/scores.csv")))
    return jg, mt


def test_seed004_mtbench_table_matches_card(seed004):
    table = seed_table("seed004", "mtbench", *seed004)
    assert md_cells(table.to_markdown()) == md_cells(SEED004_MTBENCH)


def test_seed004_jglue_table_matches_card_but_one_average(seed004):
    """Every cell matches the card except "This model"'s average.

    The card prints 0.719, but its own four values average to 0.7200, and any values that round
    half-up to 0.741/0.806/0.385/0.948 average to at least 0.7195, so 0.719 cannot come from them.
    The published-vs-reproduced rows show the discrepancy.
    """
    got = md_cells(seed_table("seed004", "jglue", *seed004).to_markdown())
    want = md_cells(SEED004_JGLUE)
    assert got[: len(want)][:-1] == want[:-1]
    assert got[len(want) - 1][:-1] == want[-1][:-1]
    assert (got[len(want) - 1][-1], want[-1][-1]) == ("**0.720**", "**0.719**")
    assert got[-2] == ["This model (published)", "", "-", "-", "-", "-", "0.719"]
    assert got[-1] == ["This model (Δ reproduced − published)", "", "-", "-", "-", "-", "+0.001"]
    assert sum(float(c.strip("*")) for c in want[-1][2:6]) / 4 == pytest.approx(0.72)
    plain = md_cells(seed_table("seed004", "jglue", *seed004, highlight=False).to_markdown())
    assert plain[-3][:3] == ["This model", "4x7B", "0.741"]


def test_seed000_base_vs_tuned_matches_card():
    jg = load.read_jglue_scores(sorted(DATA.glob("seed000/jglue/*/*/scores.csv")))
    table = seed_table("seed000", "base_vs_tuned", jg, load.read_mtbench_scores([]))
    card = SEED000_JGLUE.splitlines()
    assert md_cells(table.to_markdown()) == [["Model Name", *card[0].split(" ")[2:]]] + [
        r.split(" ") for r in card[1:]
    ]
    assert table.to_markdown() == (
        "| Model Name | Open-Orca/OpenOrcaxOpenChat-Preview2-13B | lightblue/openorca_stx |\n"
        "|---|---|---|\n"
        "| jsquad-1.1-0.3 | 0.692 | 0.836 |\n"
        "| jcommonsenseqa-1.1-0.3 | 0.831 | 0.782 |\n"
        "| jnli-1.1-0.3 | 0.504 | 0.48 |\n"
        "| marc_ja-1.1-0.3 | 0.936 | 0.959 |\n"
    )


METRICS = {"jsquad": "exact_match", "jaqket_v2": "exact_match", "xlsum_ja": "rouge2"}


def _write_scores(
    root: Path, model: str, values: dict[str, float], stderr: float | None = None
) -> Path:
    path = root / "jglue" / "s" / model / "scores.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "model": model,
            "suite": "s",
            "task": t,
            "task_version": "1.1",
            "template": "0.3",
            "num_fewshot": 3,
            "metric": METRICS.get(t, "acc"),
            "value": v,
            "stderr": stderr,
            "n": 100,
        }
        for t, v in values.items()
    ]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


WEBLAB = {  # seed 003's 8-task table, on the 0-1 scale of scores.csv
    "sft": dict(
        zip(
            [
                "jcommonsenseqa",
                "jnli",
                "marc_ja",
                "jsquad",
                "jaqket_v2",
                "xlsum_ja",
                "xwinograd_ja",
                "mgsm",
            ],
            [0.7462, 0.6656, 0.9549, 0.7834, 0.6332, 0.2057, 0.7195, 0.02],
            strict=True,
        )
    ),
    "base": dict(
        zip(
            [
                "jcommonsenseqa",
                "jnli",
                "marc_ja",
                "jsquad",
                "jaqket_v2",
                "xlsum_ja",
                "xwinograd_ja",
                "mgsm",
            ],
            [0.6658, 0.5374, 0.8207, 0.6294, 0.5619, 0.1003, 0.7195, 0.024],
            strict=True,
        )
    ),
}


def test_percent_table_with_average_first_compact_numbers_and_latex(tmp_path):
    paths = [_write_scores(tmp_path, m, v, stderr=0.0123) for m, v in WEBLAB.items()]
    jg, mt = load.read_jglue_scores(paths), load.read_mtbench_scores([])
    table = seed_table("seed003", "ja8", jg, mt, models=["sft", "base"])
    assert table.to_markdown() == (
        "| Model | average | jcommonsenseqa | jnli | marc_ja | jsquad | jaqket_v2 | xlsum_ja | xwinograd_ja | mgsm |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
        "| sft | 59.11 | 74.62 | 66.56 | 95.49 | 78.34 | 63.32 | 20.57 | 71.95 | 2 |\n"
        "| base | 50.74 | 66.58 | 53.74 | 82.07 | 62.94 | 56.19 | 10.03 | 71.95 | 2.4 |\n"
    )
    assert table.to_csv().splitlines()[1] == "sft,59.11,74.62,66.56,95.49,78.34,63.32,20.57,71.95,2"
    tex = table.to_latex()
    assert "\\toprule" in tex and "jcommonsenseqa & jnli & marc\\_ja" in tex
    assert "sft & 59.11 & 74.62" in tex
    # bold best and stderr
    table = seed_table(
        "seed003",
        "ja8",
        jg,
        mt,
        models=["sft", "base"],
        bold_best=True,
        stderr=True,
        columns=["jnli", "xwinograd_ja"],
        averages=[],
    )
    assert md_cells(table.to_markdown())[1:] == [
        ["sft", "**66.56 ± 1.23**", "**71.95 ± 1.23**"],
        ["base", "53.74 ± 1.23", "**71.95 ± 1.23**"],
    ]
    assert "\\textbf{66.56 $\\pm$ 1.23}" in table.to_latex()


def test_averages_only_like_seed002(tmp_path):
    six = ["jcommonsenseqa", "jnli", "marc_ja", "jsquad", "xwinograd_ja", "jaqket_v2"]
    vals = {
        "sft": [0.50, 0.60, 0.90, 0.44, 0.65, 0.6114],
        "ppo": [0.52, 0.58, 0.88, 0.46, 0.66, 0.55],
    }
    paths = [_write_scores(tmp_path, m, dict(zip(six, v, strict=True))) for m, v in vals.items()]
    table = seed_table(
        "seed002",
        "averages",
        load.read_jglue_scores(paths),
        load.read_mtbench_scores([]),
        models=["ppo", "sft"],
    )
    assert md_cells(table.to_markdown()) == [
        ["Model", "4-task average accuracy", "6-task average accuracy"],
        ["ppo", "61.00", "60.83"],
        ["sft", "61.00", "61.69"],
    ]


def test_format_number_rounds_decimal_text():
    assert format_number(0.7405, 3) == "0.741"  # binary 0.7405 is 0.74049999…
    assert format_number(0.7405, 3, "half_even") == "0.740"
    assert format_number(0.48, 3, trailing_zeros=False) == "0.48"
    assert format_number(-0.0001, 3) == "0.000"
    assert format_number(None, 3) == "-"


def test_bad_inputs_name_file_and_line(tmp_path, seed004):
    bad = tmp_path / "scores.csv"
    bad.write_text("model,suite,task,metric,value\nm,s,jnli,acc,0.5\nm,s,jsquad,exact_match,oops\n")
    with pytest.raises(DataError, match=r"scores.csv:3: column 'value' is not a number"):
        load.read_jglue_scores([bad])
    bad.write_text("model,task,value\nm,jnli,0.5\n")
    with pytest.raises(DataError, match=r"scores.csv:1: missing column\(s\) \['metric'\]"):
        load.read_jglue_scores([bad])
    bad.write_text(
        "model,task,metric,value\nm,jnli,acc,0.5\n"
    )  # the suite is never read from the path
    with pytest.raises(DataError, match=r"scores.csv:1: no 'suite' column"):
        load.read_jglue_scores([bad])
    with pytest.raises(ConfigError, match="no metric"):
        seed_table("seed004", "jglue", *seed004, metric=None)
    with pytest.raises(ConfigError, match="unknown column"):
        seed_table("seed004", "jglue", *seed004, published={"moe_lisa": {"avg": 0.7}})


def _png_ok(path: Path, min_w: int = 300, min_h: int = 200) -> None:
    img = mpimg.imread(path)
    h, w = img.shape[:2]
    assert w >= min_w and h >= min_h, (w, h)
    rgb = img[..., :3]
    assert rgb.std() > 0.02, f"{path} looks blank"
    assert (rgb < 0.5).mean() > 0.001, f"{path} has almost no dark pixels"


def test_radar_training_and_sweep_plots(tmp_path, seed004):
    _, mt = seed004
    grid = mt[mt["turn"] == "1"].pivot_table(index="model", columns="category", values="score")
    _png_ok(
        plots.radar(grid, list(grid.columns), tmp_path / "radar.png", title="MT-Bench"), 500, 500
    )

    steps = np.arange(10, 210, 10)
    hist = pd.DataFrame(
        {
            "step": steps,
            "train_loss": 3 - np.log(steps) / 3,
            "eval_loss": np.where(steps % 50 == 0, 2.5 - np.log(steps) / 4, np.nan),
            "learning_rate": 2e-4,
        }
    )
    lisa = pd.DataFrame({"step": np.repeat(steps, 2), "layer": np.tile([1, 3], len(steps))})
    path = plots.training_curves(hist, tmp_path / "train.png", selected_step=150, lisa=lisa)
    _png_ok(path, 600, 600)

    grid = {
        f"point{i}": {"train.lora_r": r, "train.learning_rate": lr}
        for i, (r, lr) in enumerate((r, lr) for r in (8, 16, 64) for lr in (1e-4, 2e-4))
    }
    values = pd.Series(
        {m: p["train.lora_r"] / 64 + p["train.learning_rate"] * 1000 for m, p in grid.items()}
        | {"other": 0.3}
    )
    points = plots.sweep_frame(values, grid)
    assert len(points) == 6 and set(points.columns) == {
        "train.lora_r",
        "train.learning_rate",
        "value",
        "model",
    }
    _png_ok(plots.sweep_lines(points, "average", tmp_path / "lines.png"))
    _png_ok(
        plots.sweep_heatmap(
            points, "train.lora_r", "train.learning_rate", "average", tmp_path / "heat.png"
        )
    )


def test_plots_are_byte_identical_for_same_input(tmp_path, seed004):
    _, mt = seed004
    grid = mt.pivot_table(index="model", columns="category", values="score")
    a = plots.radar(grid, list(grid.columns), tmp_path / "a.png")
    b = plots.radar(grid, list(grid.columns), tmp_path / "b.png")
    assert a.read_bytes() == b.read_bytes()


def test_paired_bootstrap_significant_only_for_a_real_difference():
    rng = np.random.default_rng(0)
    idx = range(500)
    a = pd.Series(rng.random(500) < 0.8, index=idx, dtype=float)
    b = pd.Series(rng.random(500) < 0.6, index=idx, dtype=float)
    r = paired_bootstrap(a, b, n_resamples=2000)
    assert (
        r.significant
        and r.p_value < 0.01
        and r.ci_low > 0
        and r.diff == pytest.approx(a.mean() - b.mean())
    )
    same = paired_bootstrap(a, a.copy(), n_resamples=2000)
    assert not same.significant and same.p_value == 1.0 and same.diff == 0
    # a tiny difference on few documents is not significant
    c = a.copy()
    c.iloc[0] = 1 - c.iloc[0]
    assert not paired_bootstrap(a, c, n_resamples=2000).significant


def test_samples_reader_accepts_lm_eval_logs(tmp_path):
    path = tmp_path / "samples_jnli_2024-01-01T00-00-00.jsonl"
    lines = [
        {"doc_id": 0, "acc": 1.0, "filter": "none", "doc": {}},
        {"doc_id": 1, "metrics": {"acc": 0}},
        {"doc_id": 0, "acc": 0.0, "filter": "other"},
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert load.find_samples(tmp_path / "scores.csv", "jnli") == path
    assert load.find_samples(tmp_path / "scores.csv", "jn") is None
    stable = tmp_path / "samples_jnli-1.3-0.3.jsonl"  # what the JGLUE stage writes
    stable.write_text(path.read_text())
    assert load.find_samples(tmp_path / "scores.csv", "jnli", "1.3", "0.3") == stable
    assert load.read_samples(path, "acc").to_dict() == {0: 1.0, 1: 0.0}
    with pytest.raises(DataError, match=r"jsonl:1: no value for metric 'exact_match'"):
        load.read_samples(path, "exact_match")


def test_lisa_layers_reader(tmp_path):
    p = tmp_path / "lisa_layers.csv"
    p.write_text('step,layers\n0,"[1, 3]"\n20,2 0\n')
    assert load.read_lisa_layers(p).values.tolist() == [[0, 1], [0, 3], [20, 2], [20, 0]]
    p.write_text("step,layer\nx,1\n")
    with pytest.raises(DataError, match="lisa_layers.csv:2: step is not a number"):
        load.read_lisa_layers(p)


def test_weight_checksums_from_file_or_computed(tmp_path):
    (tmp_path / "adapter_model.safetensors").write_bytes(b"abc")
    (tmp_path / "config.json").write_text("{}")
    import hashlib

    want = hashlib.sha256(b"abc").hexdigest()
    assert cards.weight_checksums(tmp_path) == {"adapter_model.safetensors": want}
    (tmp_path / "checksums.sha256").write_text(
        f"{'0' * 64}  model-00001.safetensors\n{'1' * 64} *config.json\n"
    )
    assert cards.weight_checksums(tmp_path) == {"model-00001.safetensors": "0" * 64}
    (tmp_path / "checksums.sha256").write_text("nothex\n")
    with pytest.raises(DataError, match=r"checksums.sha256:1:"):
        cards.weight_checksums(tmp_path)


def test_card_front_matter_is_yaml_with_model_index(seed004):
    jg, mt = seed004
    facts = {
        "kind": "merged",
        "base": "swallow",
        "experts": ["a", "b"],
        "base_models": ["tokyotech-llm/Swallow-7b-hf"],
        "gate_mode": "random",
        "experts_per_token": 2,
        "dtype": "bfloat16",
    }
    text = cards.render_card(
        "moe_lisa",
        facts,
        jglue=jg,
        mtbench=mt,
        tables=[],
        radar="japanese_mt_bench.png",
        checksums={"model.safetensors": "ab" * 32},
        manifest=None,
        selection=None,
        merge={"mergekit_config": {"gate_mode": "random"}},
    )
    assert text.startswith("---\n")
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["base_model"] == ["tokyotech-llm/Swallow-7b-hf"] and "moe" in meta["tags"]
    results = meta["model-index"][0]["results"]
    assert meta["model-index"][0]["name"] == "moe_lisa"
    jsquad = next(r for r in results if r["dataset"]["type"] == "jsquad")
    assert jsquad["metrics"] == [{"type": "exact_match", "value": 0.741, "name": "exact_match"}]
    assert jsquad["dataset"]["args"] == {"num_few_shot": 2}
    mt_metrics = {
        m["type"]: m["value"]
        for m in next(r for r in results if r["dataset"]["type"] == "japanese_mt_bench")["metrics"]
    }
    assert mt_metrics["avg_score"] == pytest.approx(4.5875) and mt_metrics["stem"] == 6.3
    assert (
        "gate_mode: random" in text
        and "![MT-Bench radar chart](./japanese_mt_bench.png)" in text
        and f"`{'ab' * 32}`" in text
    )


def test_method_hparams_keep_what_the_method_uses():
    train = {"lora_r": 64, "bits": 4, "lisa_layers": 8, "learning_rate": 5e-5, "seed": None}
    assert cards.method_hparams("lisa", train) == {"lisa_layers": 8, "learning_rate": 5e-5}
    assert cards.method_hparams("qlora", train) == {"lora_r": 64, "bits": 4, "learning_rate": 5e-5}
    assert cards.method_hparams("lora", train) == {"lora_r": 64, "learning_rate": 5e-5}


def test_failed_report_leaves_nothing(tmp_path):
    scores = DATA / "seed000/jglue/stx4/openorca/scores.csv"
    out = tmp_path / "reports" / "r"
    spec = {
        "tables": [{"name": "t", "metric": "acc", "columns": ["jnli"]}],
        "bootstrap": {"table": "t", "pairs": [["openorca", "openorca"]]},
    }
    with pytest.raises(DataError, match="no samples_jnli"):
        build_report(spec, {"jglue": [str(scores)]}, out, models=["openorca"])
    assert not out.exists() and list(out.parent.iterdir()) == []
    spec.pop("bootstrap")
    build_report(spec, {"jglue": [str(scores)]}, out, models=["openorca"])
    assert (out / "tables" / "t.md").read_text().splitlines()[-1] == "| openorca | 0.504 |"
    assert re.search(r"^# jaflow report", (out / "index.md").read_text())


def test_sweep_plots_through_build_report(tmp_path):
    paths = []
    for r in (8, 16):
        for lr in ("1e-4", "2e-4"):
            name = f"sw~train.lora_r={r}~train.learning_rate={lr}"
            paths.append(_write_scores(tmp_path / "in", name, {"jnli": r / 100 + float(lr) * 1000}))
    models = [Path(p).parent.name for p in paths]
    # the points' values come as data (the report rule's sweep_points), not from the names
    sweep = {
        "sw": {
            m: {"train.lora_r": r, "train.learning_rate": float(lr)}
            for m, (r, lr) in zip(
                models, [(r, lr) for r in (8, 16) for lr in ("1e-4", "2e-4")], strict=True
            )
        }
    }
    spec = {
        "tables": [
            {"name": "t", "metric": "acc", "columns": ["jnli"], "averages": [{"label": "average"}]}
        ],
        "sweep_plots": [{"sweep": "sw", "table": "t", "column": "average"}],
    }
    out = build_report(
        spec, {"jglue": [str(p) for p in paths]}, tmp_path / "r", models=models, sweep_points=sweep
    )
    pngs = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert pngs == ["sweep_sw_average.png", "sweep_sw_average_train.lora_r_train.learning_rate.png"]
    for p in pngs:
        _png_ok(out / "plots" / p)
    with pytest.raises(ConfigError, match="'avg' is not a column of table 't'"):
        build_report(
            dict(spec, sweep_plots=[{"sweep": "sw", "table": "t", "column": "avg"}]),
            {"jglue": [str(p) for p in paths]},
            tmp_path / "r2",
            models=models,
            sweep_points=sweep,
        )
    with pytest.raises(ConfigError, match="no points given for sweep 'sw'"):
        build_report(spec, {"jglue": [str(p) for p in paths]}, tmp_path / "r3", models=models)


def test_mtbench_scores_with_average_rows_and_both_turns(tmp_path, seed004):
    """The MT-Bench stage also writes avg_score rows and pooled `all` turns; tables and cards skip them."""
    src = pd.read_csv(DATA / "seed004/mtbench/moe_lisa.csv")
    extra = pd.concat(
        [
            src.assign(turn="1.0"),
            src.assign(turn=2, score=src.score - 1),
            src.assign(turn="all", score=src.score - 0.5),
        ]
    )
    extra = pd.concat(
        [
            extra,
            pd.DataFrame([{"model": "moe_lisa", "category": "avg_score", "turn": 1, "score": 9.9}]),
        ]
    )
    path = tmp_path / "moe_lisa.csv"
    extra.to_csv(path, index=False)
    mt = load.read_mtbench_scores([path])
    assert sorted(set(mt.turn)) == ["1", "2", "all"]
    jg, _ = seed004
    one = md_cells(seed_table("seed004", "mtbench", jg, mt).to_markdown())[-1]
    assert one[-1] == "**4.5875**"
    two = md_cells(seed_table("seed004", "mtbench", jg, mt, turn=2).to_markdown())[-1]
    assert two[2:] == [
        "**1.0**",
        "**2.4**",
        "**6.5**",
        "**0.9**",
        "**1.6**",
        "**4.5**",
        "**5.3**",
        "**6.5**",
        "**3.5875**",
    ]
    results = cards.model_index("moe_lisa", jg, mt)[0]["results"]
    metrics = next(r for r in results if r["dataset"]["type"] == "japanese_mt_bench")["metrics"]
    assert [m["type"] for m in metrics] == [
        "coding",
        "extraction",
        "humanities",
        "math",
        "reasoning",
        "roleplay",
        "stem",
        "writing",
        "avg_score",
    ]
    assert metrics[-1]["value"] == pytest.approx(4.5875)


def test_published_beside_reproduced_in_tasks_as_rows_layout():
    """Seed 000's published numbers next to a reproduction: published and Δ become columns."""
    jg = load.read_jglue_scores(sorted(DATA.glob("seed000/jglue/*/*/scores.csv")))
    jg.loc[(jg.model == "openorca_stx") & (jg.task == "jnli"), "value"] = (
        0.4712  # a reproduction that differs
    )
    published = {"openorca_stx": {"jsquad-1.1-0.3": 0.836, "jnli-1.1-0.3": 0.48}}
    table = seed_table(
        "seed000", "base_vs_tuned", jg, load.read_mtbench_scores([]), published=published
    )
    assert md_cells(table.to_markdown()) == [
        [
            "Model Name",
            "Open-Orca/OpenOrcaxOpenChat-Preview2-13B",
            "lightblue/openorca_stx",
            "lightblue/openorca_stx (published)",
            "lightblue/openorca_stx (Δ reproduced − published)",
        ],
        ["jsquad-1.1-0.3", "0.692", "0.836", "0.836", "0"],
        ["jcommonsenseqa-1.1-0.3", "0.831", "0.782", "-", "-"],
        ["jnli-1.1-0.3", "0.504", "0.471", "0.48", "-0.009"],
        ["marc_ja-1.1-0.3", "0.936", "0.959", "-", "-"],
    ]


def test_mtbench_without_valid_ratings_still_reports(tmp_path):
    """A judge whose every rating failed to parse (the tiny demo's) gives '-' cells and an empty radar."""
    cats = [
        "coding",
        "extraction",
        "humanities",
        "math",
        "reasoning",
        "roleplay",
        "stem",
        "writing",
    ]
    path = tmp_path / "m.csv"
    pd.DataFrame(
        {
            "model": "m",
            "category": cats,
            "turn": 1,
            "score": "",
            "stdev": "",
            "n": 0,
            "n_failed": 1,
            "n_errors": 0,
        }
    ).to_csv(path, index=False)
    out = build_report(
        {
            "tables": [
                {
                    "name": "mt",
                    "source": "mtbench",
                    "decimals": 1,
                    "averages": [{"label": "avg_score", "decimals": 4}],
                }
            ]
        },
        {"mtbench": [str(path)]},
        tmp_path / "r",
        models=["m"],
    )
    assert md_cells((out / "tables/mt.md").read_text())[1] == ["m"] + ["-"] * 9
    _png_ok(out / "plots/mtbench_radar.png", 500, 500)
    assert not any(
        r["dataset"]["type"] == "japanese_mt_bench"
        for r in cards.model_index(
            "m", load.read_jglue_scores([]), load.read_mtbench_scores([path])
        )[0]["results"]
    )
