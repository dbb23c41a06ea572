"""The report rule through real snakemake on fixture outputs of the earlier stages, then --report."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.workflow

CONFIG = yaml.safe_load("""
datasets:
  mix:
    sources:
      - {name: alpaca, path: data/alpaca.jsonl}
      - {name: qa, path: data/qa.jsonl}
models:
  base: {pretrained: org/base-7b}
  tuned:
    from: base
    method: lisa
    dataset: mix
    train: {learning_rate: 0.00005, lisa_layers: 2, lisa_interval: 20}
  moe:
    base: base
    experts: [base, tuned]
jglue:
  data_dir: data/jglue-v1.1
  runs:
    - {suite: jglue4, models: [base, tuned, moe]}
mtbench:
  questions: data/japanese_mt_bench/question.jsonl
  models: [base, tuned, moe]
  judge: {backend: openai, model: gpt-4}
reports:
  demo:
    title: Demo report
    labels: {moe: This model}
    highlight: [moe]
    model_info: {base: {Size: 7B}, tuned: {Size: 7B}, moe: {Size: 2x7B}}
    tables:
      - name: jglue
        title: JGLUE (jsquad exact_match, others acc)
        metric: acc
        info_columns: [Size]
        columns: [{task: jsquad, metric: exact_match}, jcommonsenseqa, jnli, marc_ja]
        averages: [{label: average}]
        stderr: true
        published: {tuned: {average: 0.5}}
      - name: base_vs_tuned
        layout: tasks_as_rows
        metric: acc
        models: [base, tuned]
        bold_best: true
        columns:
          - {task: jsquad, metric: exact_match, label: "{task}-{task_version}-{template}"}
          - {task: jnli, label: "{task}-{task_version}-{template}"}
      - name: mtbench
        source: mtbench
        decimals: 1
        averages: [{label: avg_score, decimals: 4}]
    jglue_radar: [jglue]
    bootstrap: {table: base_vs_tuned, pairs: [[tuned, base], [base, base]], n_resamples: 1000}
""")


@pytest.fixture(autouse=True)
def _judge_key(monkeypatch):
    """The config's API judge needs its key variable set at DAG build; no judge is called."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-sent")


TASKS = [("jsquad", "exact_match"), ("jcommonsenseqa", "acc"), ("jnli", "acc"), ("marc_ja", "acc")]
CATS = ["coding", "extraction", "humanities", "math", "reasoning", "roleplay", "stem", "writing"]


def write_stage_outputs(root: Path) -> None:
    """Tidy outputs of sampling, training, selection, merge, JGLUE and MT-Bench, as the contract has them."""
    rng = np.random.default_rng(0)
    for k, m in enumerate(["base", "tuned", "moe"]):
        d = root / "results/test/jglue/jglue4" / m
        d.mkdir(parents=True)
        rows = []
        for t, metric in TASKS:
            vals = (rng.random(200) < 0.3 + 0.25 * k).astype(float)
            (d / f"samples_{t}_2026-01-01T00-00-00.jsonl").write_text(
                "".join(
                    json.dumps({"doc_id": i, metric: v, "filter": "none"}) + "\n"
                    for i, v in enumerate(vals)
                )
            )
            rows.append(
                {
                    "model": m,
                    "suite": "jglue4",
                    "task": t,
                    "task_version": "1.1",
                    "template": "0.3",
                    "num_fewshot": 3,
                    "metric": metric,
                    "value": vals.mean(),
                    "stderr": vals.std(ddof=1) / np.sqrt(200),
                    "n": 200,
                }
            )
        pd.DataFrame(rows).to_csv(d / "scores.csv", index=False)
        d = root / "results/test/mtbench/japanese_mt_bench/scores/gpt-4"
        d.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(
            {
                "model": m,
                "category": CATS,
                "turn": 1,
                "score": rng.integers(10, 90, 8) / 10,
                "stdev": 1.0,
                "n": 10,
                "n_failed": 0,
                "n_errors": 0,
            }
        ).to_csv(d / f"{m}.csv", index=False)
    d = root / "results/test/train/tuned"
    d.mkdir(parents=True)
    steps = np.arange(1, 41)
    pd.DataFrame(
        {
            "step": steps,
            "epoch": steps / 40,
            "train_loss": 3 - np.log(steps) / 2,
            "eval_loss": np.where(steps % 10 == 0, 2.8 - np.log(steps) / 3, np.nan),
            "learning_rate": 5e-5,
            "tokens_seen": steps * 100,
            "tokens_per_s": 50.0,
        }
    ).to_csv(d / "log_history.csv", index=False)
    (d / "trainer_state.json").write_text("{}")
    (d / "lisa_layers.csv").write_text("step,layers\n0,1 3\n20,0 2\n")
    for m in ["tuned", "moe"]:
        d = root / "results/test/models" / m
        d.mkdir(parents=True)
        (d / "model.safetensors").write_bytes(b"weights of " + m.encode())
    (root / "results/test/models/tuned/selection.json").write_text(
        json.dumps({"step": 30, "metric": "eval_loss", "value": 1.67, "mode": "min"})
    )
    (root / "results/test/models/moe/merge.json").write_text(
        json.dumps(
            {
                "architecture": "MixtralForCausalLM",
                "num_local_experts": 2,
                "num_experts_per_tok": 2,
                "mergekit_config": {"base_model": "org/base-7b", "gate_mode": "random"},
            }
        )
    )
    d = root / "results/test/datasets/mix"
    d.mkdir(parents=True)
    (d / "manifest.json").write_text(
        json.dumps(
            {
                "dataset": "mix",
                "seed": 1234,
                "sources": [
                    {"name": "alpaca", "rows_read": 243, "rows_used": 60},
                    {"name": "qa", "rows_read": 50, "rows_used": 40},
                ],
                "counts": {
                    "train": 90,
                    "validation": 10,
                    "total": 100,
                    "per_source": {"alpaca": 60, "qa": 40},
                },
            }
        )
    )


def test_report_rule_and_html_report(run_workflow, tmp_path):
    work = tmp_path / "work"
    write_stage_outputs(work)
    run_workflow(
        "results/test/reports/demo/index.md",
        config=CONFIG,
        default_config=False,
        args=["--allowed-rules", "report"],
        cores=1,
    )
    out = work / "results/test/reports/demo"
    for name in ("jglue", "base_vs_tuned", "mtbench"):
        for ext in ("md", "csv", "tex"):
            assert (out / "tables" / f"{name}.{ext}").stat().st_size > 0
    assert sorted(p.name for p in (out / "plots").glob("*.png")) == [
        "jglue_published_vs_reproduced.png",
        "jglue_radar.png",
        "mtbench_radar.png",
        "train_tuned.png",
    ]
    for png in (out / "plots").glob("*.png"):
        img = mpimg.imread(png)
        assert img.shape[0] >= 300 and img.shape[1] >= 300 and img[..., :3].std() > 0.02

    index = (out / "index.md").read_text()
    assert "| tuned (Δ reproduced − published) |  | - | - | - | - |" in index
    assert "| **This model** | **2x7B** |" in index

    boot = pd.read_csv(out / "tables" / "bootstrap.csv")
    tuned = boot[(boot.model_a == "tuned") & (boot.model_b == "base")]
    same = boot[(boot.model_a == "base") & (boot.model_b == "base")]
    assert len(tuned) == 2 and tuned.significant.all() and (tuned["diff"] > 0).all()
    assert len(same) == 2 and not same.significant.any() and (same.p_value == 1).all()

    card = (out / "cards/tuned/README.md").read_text()
    front = yaml.safe_load(card.split("---\n")[1])
    results = front["model-index"][0]["results"]
    assert front["base_model"] == ["org/base-7b"]
    jsquad = next(r for r in results if r["dataset"]["type"] == "jsquad")
    scores = pd.read_csv(work / "results/test/jglue/jglue4/tuned/scores.csv")
    assert jsquad["metrics"][0]["value"] == pytest.approx(
        scores.set_index("task").loc["jsquad", "value"]
    )
    assert any(r["dataset"]["type"] == "japanese_mt_bench" for r in results)
    import hashlib

    digest = hashlib.sha256(b"weights of tuned").hexdigest()
    assert f"| model.safetensors | `{digest}` |" in card
    assert (
        "| alpaca | 243 | 60 |" in card
        and "Total: 100 rows (90 train, 10 validation)" in card
        and "Selected checkpoint: step 30" in card
    )
    assert "lisa_layers: 2" in card and "lora_r" not in card  # a LISA run has no LoRA settings
    assert (out / "cards/tuned/japanese_mt_bench.png").exists()
    moe = (out / "cards/moe/README.md").read_text()
    assert "gate_mode: random" in moe and "MixtralForCausalLM with 2 experts" in moe
    assert "mergekit-moe" in moe and yaml.safe_load(moe.split("---\n")[1])["tags"][-1] == "moe"

    items = json.loads((out / "html/items.json").read_text())
    stages = {name: item["stage"] for name, item in items.items()}
    assert stages == {
        "jglue": "JGLUE",
        "base_vs_tuned": "JGLUE",
        "mtbench": "MT-Bench",
        "bootstrap": "JGLUE",
        "mtbench_radar": "MT-Bench",
        "jglue_radar": "JGLUE",
        "jglue_published_vs_reproduced": "JGLUE",
        "train_tuned": "Training",
        "card_tuned": "Model cards",
        "card_moe": "Model cards",
    }
    assert all("Made by report 'demo'" in item["caption"] for item in items.values())

    run_workflow(config=CONFIG, default_config=False, args=["--report", "report.zip"], cores=1)
    with zipfile.ZipFile(work / "report.zip") as z:
        names = z.namelist()
        html = z.read(next(n for n in names if n.endswith("report.html"))).decode()
    for name in stages:
        assert any(n.endswith(f"/{name}.html") for n in names), name
    for text in ("a page of report", "Model cards", "MT-Bench", "Training"):
        assert text in html, text
    # the info panel names the settings instead of dumping the report spec
    assert "report 'demo' settings" in html and "'bold_best'" not in html


def test_demo_tells_the_truth(finished_demo):
    """The default config's tuned model beats its base on a JGLUE task by a margin the paired
    bootstrap calls significant, and the tiny judge rates the two models' answers differently,
    so the radar chart has two different polygons."""
    out = finished_demo / "results/demo/reports/demo"
    boot = pd.read_csv(out / "tables/bootstrap.csv")
    wins = boot[
        (boot.model_a == "tiny_qlora")
        & (boot.model_b == "tiny_llama")
        & boot.significant
        & (boot["diff"] > 0)
    ]
    assert not wins.empty, boot.to_string()
    assert "yes" in (out / "tables/bootstrap.md").read_text()

    mt = pd.concat(
        pd.read_csv(p)
        for p in sorted(
            (finished_demo / "results/demo/mtbench/japanese_mt_bench/scores/tiny_judge").glob(
                "*.csv"
            )
        )
    )
    turn1 = mt[(mt.turn.astype(str) == "1") & (mt.category != "avg_score")]
    grid = turn1.pivot_table(index="model", columns="category", values="score")
    assert set(grid.index) == {"tiny_llama", "tiny_qlora"} and grid.notna().all().all(), (
        mt.to_string()
    )
    assert (grid.loc["tiny_llama"] != grid.loc["tiny_qlora"]).any(), grid.to_string()
    # the judge's ratings follow its documented rule on each answer (jaflow.tiny.judge.rating)
    from jaflow.tiny.judge import rating

    judged = [
        json.loads(line)
        for p in sorted(
            (
                finished_demo / "results/demo/mtbench/japanese_mt_bench/model_judgment/tiny_judge"
            ).glob("*.jsonl")
        )
        for line in p.open()
    ]
    answers = {}
    for p in (finished_demo / "results/demo/mtbench/japanese_mt_bench/model_answer").glob(
        "*.jsonl"
    ):
        for line in p.open():
            a = json.loads(line)
            answers[(a["model_id"], a["question_id"])] = a["choices"][0]["turns"][0]
    agree = [
        j["score"] == rating(answers[(j["model"], j["question_id"])], j["category"])
        for j in judged
        if j.get("turn", 1) == 1
    ]
    assert sum(agree) / len(agree) >= 0.5, agree


def test_no_op_rerun_prints_where_everything_is(finished_demo):
    from conftest import snakemake

    proc = snakemake(finished_demo)
    out = proc.stdout + proc.stderr
    assert "Nothing to be done" in out
    summary = out[out.index("jaflow outputs of experiment 'demo'") :]
    for text in (
        "results/demo/reports/demo/ (index.md",
        "snakemake --report report.html",
        "job logs: logs/demo/",
        "JGLUE scores: results/demo/jglue/",
        "MT-Bench scores: results/demo/mtbench/",
    ):
        assert text in summary, text
    assert out.count("jaflow outputs of experiment") == 1
