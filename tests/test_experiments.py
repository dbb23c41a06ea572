"""The seed-card experiment configs (config/experiments/): valid, dry-run DAGs with the jobs
each card needs, published numbers consistent with the cards, and the same structure run end
to end on the tiny offline world."""

from __future__ import annotations

import copy
import csv
import json
import os
import re
import shutil
import subprocess
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
import yaml
from tiny_cards import TINY_JGLUE_TASKS as JGLUE_FAMILIES
from tiny_cards import base_models, hub_references, tiny_arch, tiny_source_rows, tinyify

from jaflow.config import prepare_config
from jaflow.errors import DataError
from jaflow.experiments import (
    JP_STABLE_SHA256,
    missing_user_file,
    snow_rows,
    user_file_hint,
    write_snow,
)
from jaflow.graph import BaseModel, MergedModel, ModelGraph, TrainedModel
from jaflow.layout import Layout

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "config" / "experiments"
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))

# Jobs each card's dry run must list (rules of the stages; other helper rules may be added).
EXPECTED_JOBS = {
    "openorca_stx": {
        "sample_dataset": 1,
        "train": 1,
        "select_checkpoint": 1,
        "jglue": 3,
        "report": 1,
        "merge_moe": 0,
        "mtbench_answer": 0,
        "mtbench_judge": 0,
        "marc_ja": 1,
    },
    "rinna_japanese_3.6b_sft": {
        "sample_dataset": 0,
        "train": 0,
        "select_checkpoint": 0,
        "jglue": 3,
        "report": 1,
        "merge_moe": 0,
        "mtbench_answer": 0,
        "mtbench_judge": 0,
        "marc_ja": 1,
    },
    "rinna_bilingual_4b_sft": {
        # 5 models x jglue6 + the SFT model's Open LLM suite
        "sample_dataset": 0,
        "train": 0,
        "select_checkpoint": 0,
        "jglue": 6,
        "report": 1,
        "merge_moe": 0,
        "mtbench_answer": 0,
        "mtbench_judge": 0,
        "marc_ja": 1,
    },
    "weblab_10b_sft": {
        "sample_dataset": 1,
        "train": 1,
        "select_checkpoint": 1,
        "jglue": 3,
        "report": 1,
        "merge_moe": 0,
        "mtbench_answer": 0,
        "mtbench_judge": 0,
        "marc_ja": 1,
    },
    "swallow_moe_4x7b_lisa": {
        # one merge, one LISA run; JGLUE of 4 experts + merge + LISA + the card's own model;
        # MT-Bench of the 4 experts + LISA + the card's own model
        "sample_dataset": 1,
        "train": 1,
        "select_checkpoint": 1,
        "merge_moe": 1,
        "jglue": 7,
        "mtbench_answer": 6,
        "mtbench_judge": 6,
        "report": 1,
        "marc_ja": 1,
    },
}
# Files the user supplies (not on the hub), under data/: the dry run lists a user_data job for
# each one a rule takes as an input. REQUIRED are inputs already; the JGLUE data directory and
# the MT-Bench reference and judge-prompt files become inputs with their stages.
JGLUE_DIR = "data/jglue-v1.1"
MARC_REVIEWS = (
    "data/marc_ja/amazon_reviews_multilingual_JP_v1_00.tsv.gz"  # every card: MARC-ja rebuilt
)
USER_FILES_REQUIRED = {
    "openorca_stx": {"data/stx/snow_t15.jsonl", MARC_REVIEWS},
    "rinna_japanese_3.6b_sft": {MARC_REVIEWS},
    "rinna_bilingual_4b_sft": {MARC_REVIEWS},
    "weblab_10b_sft": {"data/weblab/alpaca_cleaned_ja.json", MARC_REVIEWS},
    "swallow_moe_4x7b_lisa": {
        "data/ichikara-instruction/ichikara-instruction.jsonl",
        "data/japanese_mt_bench/question_full.jsonl",
        MARC_REVIEWS,
    },
}
USER_FILES_LATER = {
    "swallow_moe_4x7b_lisa": {
        "data/japanese_mt_bench/reference_answer/gpt-4.jsonl",  # judge prompts: a pinned URL
    },
}
CARDS = sorted(EXPECTED_JOBS)
# Nothing in a dry run may reach the network: hub ids are not inputs, and any request through
# these settings would fail.
OFFLINE_ENV = {
    # seed 004's judge is an API model: its key variable must be set when the DAG is built
    # (no network is reached: the proxies below go nowhere, and no judge job runs)
    "OPENAI_API_KEY": "sk-never-sent",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "OMP_NUM_THREADS": "1",
}


def _no_network_prefix() -> list[str]:
    """`unshare -rn` runs a command in a fresh network namespace with no interfaces up, where
    the machine allows it; elsewhere the offline settings above are the guard."""
    if (
        shutil.which("unshare")
        and subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0
    ):
        return ["unshare", "-rn"]
    return []


NO_NETWORK = _no_network_prefix()


def load_card(card: str) -> dict:
    with open(EXPERIMENTS / f"{card}.yaml", encoding="utf-8") as f:
        return yaml.safe_load(f)


def snakemake(
    args: list[str], workdir: Path, timeout: int = 600, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), **OFFLINE_ENV)
    return subprocess.run(
        [
            *prefix,
            SNAKEMAKE,
            "--snakefile",
            str(ROOT / "Snakefile"),
            "--directory",
            str(workdir),
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def job_stats(output: str) -> dict[str, int]:
    """Rule -> job count from the 'Job stats' table of a dry run."""
    table = output.split("Job stats:", 1)[1]
    counts = {}
    for line in table.splitlines()[3:]:
        m = re.match(r"^(\S+)\s+(\d+)$", line.strip())
        if not m:
            break
        counts[m.group(1)] = int(m.group(2))
    return counts


def dry_run(configfile: Path, workdir: Path) -> tuple[dict[str, int], str]:
    proc = snakemake(["-n", "--configfile", str(configfile)], workdir, prefix=tuple(NO_NETWORK))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return job_stats(proc.stdout), proc.stdout


# -- the card configs ---------------------------------------------------------------------

TINY = "tiny"  # the tiny swaps are written to tiny.yaml: experiment `tiny`, results/tiny/


def graph_of(config: dict) -> ModelGraph:
    """The model graph of a config (validated and filled; its paths are not checked)."""
    return ModelGraph.from_config(prepare_config(copy.deepcopy(config)), Layout(TINY))


def test_every_card_has_a_config():
    assert (
        sorted(p.stem for p in EXPERIMENTS.glob("*.yaml") if not p.stem.startswith("sweep"))
        == CARDS
    )


@pytest.mark.parametrize("card", CARDS)
def test_card_config_is_valid(card):
    config = prepare_config(load_card(card))
    graph = graph_of(config)
    evaluated = {m for r in config["jglue"]["runs"] for m in r["models"]} | set(
        config["mtbench"]["models"]
    )
    assert evaluated <= set(graph.nodes)
    for report in config["reports"].values():
        for table in report["tables"]:
            assert set(table.get("published", {})) <= set(graph.nodes), table["name"]


@pytest.mark.parametrize("card", CARDS)
def test_card_dry_run_lists_the_expected_jobs(card, tmp_path):
    counts, out = dry_run(EXPERIMENTS / f"{card}.yaml", tmp_path)
    got = {rule: counts.get(rule, 0) for rule in EXPECTED_JOBS[card]}
    assert got == EXPECTED_JOBS[card]
    assert counts["all"] == 1
    assert not [r for r in counts if r.startswith("tiny")], (
        "a card config must not use the tiny world"
    )
    user_files = set(re.findall(r"rule user_data:\n\s+output: (\S+)", out))
    required = USER_FILES_REQUIRED.get(card, set())
    assert required <= user_files <= required | USER_FILES_LATER.get(card, set()) | {JGLUE_DIR}
    assert load_card(card)["jglue"]["data_dir"] == JGLUE_DIR
    assert counts.get("user_data", 0) == len(user_files)
    assert not (tmp_path / "results").exists()  # a dry run writes nothing


def test_user_supplied_files_are_not_jobs_once_present(tmp_path):
    card = "swallow_moe_4x7b_lisa"
    for path in USER_FILES_REQUIRED[card] | USER_FILES_LATER[card] | {f"{JGLUE_DIR}/README"}:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("{}\n")
    counts, _ = dry_run(EXPERIMENTS / "swallow_moe_4x7b_lisa.yaml", tmp_path)
    assert counts.get("user_data", 0) == 0
    assert counts["sample_dataset"] == 1 and counts["mtbench_answer"] == 6


def test_missing_user_file_says_what_to_do():
    with pytest.raises(
        DataError, match=r"data/ichikara-instruction/x\.jsonl.*not on the Hugging Face hub"
    ):
        missing_user_file("data/ichikara-instruction/x.jsonl")
    with pytest.raises(
        DataError,
        match=r"a07fec9.*/fastchat/llm_judge/data/japanese_mt_bench/reference_answer/gpt-4\.jsonl",
    ):
        missing_user_file("data/japanese_mt_bench/reference_answer/gpt-4.jsonl")


def _avg(values, decimals):
    q = Decimal(1).scaleb(-decimals)
    return (sum(Decimal(str(v)) for v in values) / len(values)).quantize(q, rounding=ROUND_HALF_UP)


def test_published_averages_agree_with_the_published_columns():
    """Typos in the transcribed numbers show up as averages that do not add up."""
    checked = 0
    for card in CARDS:
        for report in load_card(card)["reports"].values():
            for table in report["tables"]:
                for model, row in (table.get("published") or {}).items():
                    for avg in table.get("averages") or []:
                        label = avg["label"]
                        over = avg.get("over") or [
                            c["label"] if isinstance(c, dict) else c.capitalize()
                            for c in table["columns"]
                        ]
                        over = ["STEM" if c == "Stem" else c for c in over]
                        if label not in row or not all(c in row for c in over):
                            continue
                        decimals = avg.get("decimals", table.get("decimals", 3))
                        expected = Decimal(str(row[label])).quantize(Decimal(1).scaleb(-decimals))
                        # the cards average unrounded scores: allow one unit in the last place
                        ulp = Decimal(1).scaleb(-decimals)
                        diff = abs(_avg([row[c] for c in over], decimals) - expected)
                        assert diff <= ulp, (card, table["name"], model, label)
                        checked += 1
    # seed 002 Open LLM (1), seed 003 8-task and 4-task (2 x 3 rows), seed 004 MT-Bench (5 + the
    # card's own model, the same row) and JGLUE (6 + the same)
    assert checked == 1 + 6 + 6 + 7


def test_snow_xlsx_converts_to_the_hub_datasets_fields(tmp_path):
    import pandas as pd

    frame = pd.DataFrame(
        {
            "ID": ["1"],
            "#日本語(原文)": ["彼は独身だ。"],
            "#やさしい日本語": ["彼は結婚していない。"],
            "#英語(原文)": ["He is a bachelor."],
        }
    )
    xlsx = tmp_path / "T15.xlsx"
    frame.to_excel(xlsx, index=False)
    assert write_snow(xlsx, tmp_path / "snow.jsonl") == 1
    row = json.loads((tmp_path / "snow.jsonl").read_text(encoding="utf-8"))
    assert row == {
        "ID": "1",
        "original_ja": "彼は独身だ。",
        "simplified_ja": "彼は結婚していない。",
        "original_en": "He is a bachelor.",
    }
    with pytest.raises(DataError, match="missing columns"):
        list(snow_rows(frame.drop(columns=["#やさしい日本語"])))


def test_mt_bench_downloads_are_pinned_by_commit_and_sha256():
    for rel, sha in JP_STABLE_SHA256.items():
        hint = user_file_hint(
            f"data/{rel}"
            if rel.startswith("japanese_mt_bench/")
            else f"data/japanese_mt_bench/{rel}"
        )
        assert "/a07fec95abc6e8015427c12a0e17c800aa799fa9/fastchat/llm_judge/data/" + rel in hint
        assert f"echo '{sha}  data/" in hint and "sha256sum -c" in hint


# -- what each card ran, checked against the cards and the public runs they cite ----------------


def effective_tasks(config: dict) -> dict[str, dict[str, int]]:
    """model -> {jp-stable task name (task-version-template): few-shot} over the config's runs."""
    from jaflow.evaluate.jglue.suites import BUILTIN_SUITES

    jglue = config["jglue"]
    out: dict[str, dict[str, int]] = {}
    for run in jglue["runs"]:
        for t in jglue.get("suites", {}).get(run["suite"]) or BUILTIN_SUITES[run["suite"]]:
            if t["task"] not in JGLUE_FAMILIES:
                name = t["task"]
            elif t["task"] == "xwinograd_ja":
                name = "xwinograd_ja"
            else:
                template = t.get("template") or run.get("template") or jglue["template"]
                name = f"{t['task']}-{t['version']}-{template}"
            for model in run["models"]:
                out.setdefault(model, {})[name] = t.get("num_fewshot")
    return out


def _tasks(names: str, fewshot: str) -> dict[str, int]:
    return dict(zip(names.split(","), (int(k) for k in fewshot.split(",")), strict=True))


# The cards' evaluation commands, and jp-stable's models/rinna/*/harness.sh (Stability-AI/
# lm-evaluation-harness 577d376 / 2f1583c) for the rinna models: TASK and --num_fewshot, as
# printed there (seeds 001/002 keep the six tasks of rinna's 6-task average).
STX = _tasks("jsquad-1.1-0.3,jcommonsenseqa-1.1-0.3,jnli-1.1-0.3,marc_ja-1.1-0.3", "2,3,3,3")
RINNA = "jcommonsenseqa-1.1-{t},jnli-1.1-{t},marc_ja-1.1-{t},jsquad-1.1-{t},jaqket_v2-0.1-{t},xwinograd_ja"
RINNA_FEWSHOT = "3,3,3,2,1,0"
WEBLAB = _tasks(
    "jcommonsenseqa-1.1-0.3,jnli-1.1-0.3,marc_ja-1.1-0.3,jsquad-1.1-0.3,jaqket_v2-0.2-0.3,"
    "xlsum_ja-1.0-0.3,xwinograd_ja,mgsm-1.0-0.3",
    "3,3,3,2,1,1,0,5",
)
SWALLOW = _tasks("jsquad-1.1-0.3,jcommonsenseqa-1.1-0.3,jnli-1.3-0.3,marc_ja-1.1-0.3", "2,3,3,3")
OPENLLM = {
    "arc_challenge": 25,
    "hellaswag": 10,
    "mmlu": 5,
    "truthfulqa_mc2": 0,
    "winogrande": 5,
    "gsm8k": 5,
}
CARD_TASKS = {
    "openorca_stx": {m: STX for m in ("openorca-13b", "openorca-stx", "openorca-stx-published")},
    "rinna_japanese_3.6b_sft": {
        "japanese-gpt-neox-3.6b-instruction-sft": _tasks(RINNA.format(t="0.4"), RINNA_FEWSHOT),
        "japanese-gpt-neox-3.6b-instruction-ppo": _tasks(RINNA.format(t="0.4"), RINNA_FEWSHOT),
        "japanese-gpt-neox-3.6b": _tasks(RINNA.format(t="0.2"), RINNA_FEWSHOT),
    },
    "rinna_bilingual_4b_sft": {
        "bilingual-gpt-neox-4b-instruction-sft": {
            **_tasks(RINNA.format(t="0.5"), RINNA_FEWSHOT),
            **OPENLLM,
        },
        "bilingual-gpt-neox-4b-instruction-ppo": _tasks(RINNA.format(t="0.5"), RINNA_FEWSHOT),
        "japanese-gpt-neox-3.6b-instruction-ppo": _tasks(RINNA.format(t="0.4"), RINNA_FEWSHOT),
        "bilingual-gpt-neox-4b": _tasks(RINNA.format(t="0.2"), RINNA_FEWSHOT),
        "japanese-gpt-neox-3.6b": _tasks(RINNA.format(t="0.2"), RINNA_FEWSHOT),
    },
    "weblab_10b_sft": {
        m: WEBLAB for m in ("weblab-10b", "weblab-10b-instruction-sft", "weblab-10b-sft")
    },
    "swallow_moe_4x7b_lisa": {
        m: SWALLOW
        for m in (
            "swallow-7b-instruct",
            "superswallow-7b-v0.1",
            "superswallow-7b-v0.2",
            "superswallow-7b-v0.3",
            "swallow-moe-4x7b",
            "swallow-moe-4x7b-lisa",
            "swallow-moe-4x7b-lisa-published",
        )
    },
}
# lm-eval model type and batch size: seed 000's command (hf-causal-experimental, --batch_size 4),
# jp-stable's rinna harness.sh (hf-causal, no batch size); 003/004 name neither.
CARD_HARNESS = {
    "openorca_stx": ("hf-causal-experimental", 4),
    "rinna_japanese_3.6b_sft": ("hf-causal", 1),
    "rinna_bilingual_4b_sft": ("hf-causal", 1),
    "weblab_10b_sft": ("hf-causal", 1),
    "swallow_moe_4x7b_lisa": ("hf-causal", 1),
}
# Seed 000's public card: dataset, subset, prompt template and response (issue 18).
STX_SOURCES = {
    "snow_simplified_japanese_corpus": (
        "path",
        "data/stx/snow_t15.jsonl",
        None,
        "元の日本語：\n{original_ja}\n\nシンプルな日本語：",
        "{simplified_ja}",
    ),
    "tydiqa-goldp": (
        "hub",
        "khalidalt/tydiqa-goldp",
        "japanese",
        "{passage_text}\n\n{question_text}",
        "{answers[text][0]}",
    ),
    "xlsum": (
        "hub",
        "csebuetnlp/xlsum",
        "japanese",
        "記事：\n{article_text}\n\n要約：",
        "{summary}",
    ),
}
# Seed 004: "各sourceから最大100件、計1475件", "計5050件", 1000 x 3, "4802件", "合計14327件".
SWALLOW_EXPECT = {
    "amenokaku-code-instruct": 1475,
    "jp-effective-instructions": 5050,
    "oasst1-21k-en": 1000,
    "roleplay": 1000,
    "MetaMathQA": 1000,
    "ichikara-instruction": 4802,
}


@pytest.mark.parametrize("card", CARDS)
def test_card_runs_the_tasks_templates_and_fewshot_the_card_ran(card):
    config = prepare_config(load_card(card))
    assert effective_tasks(config) == CARD_TASKS[card]
    assert (config["jglue"]["harness"], config["jglue"]["batch_size"]) == CARD_HARNESS[card]
    # MARC-ja is rebuilt by JGLUE's recipe, with JGLUE's published counts
    assert config["jglue"]["marc_ja"]["reviews"] == MARC_REVIEWS
    assert config["jglue"]["marc_ja"]["expect"] == {"train": 187_528, "valid": 5_654}
    for family in config["jglue"]["urls"].values():  # JGLUE v1.1.0 by commit, with sha256
        for spec in family.values():
            assert "/yahoojapan/JGLUE/6791a5003e6deaa6fb2458bcb3aa1f58dc52ef33/" in spec["url"]
            assert len(spec["sha256"]) == 64


def test_rinna_models_use_the_slow_tokenizer_and_seed_002_pins_its_md5():
    for card in ("rinna_japanese_3.6b_sft", "rinna_bilingual_4b_sft"):
        models = prepare_config(load_card(card))["models"]
        assert all(m["use_fast"] is False for m in models.values()), (
            card
        )  # harness.sh: use_fast=False
    sft = prepare_config(load_card("rinna_bilingual_4b_sft"))["models"][
        "bilingual-gpt-neox-4b-instruction-sft"
    ]
    assert sft["md5"] == {
        "pytorch_model.bin": "de72aa5b66beee7b65783c96f687d186"
    }  # the 2023/08/02 model


def test_seed_002_keeps_the_cards_averages_apart_from_jp_stables_result_json():
    tables = {
        t["name"]: t
        for t in load_card("rinna_bilingual_4b_sft")["reports"]["rinna_bilingual_4b"]["tables"]
    }
    card = tables["jglue_averages"]["published"]
    assert card["bilingual-gpt-neox-4b-instruction-sft"] == {
        "4-task average accuracy": 61.02,
        "6-task average accuracy": 61.69,
    }
    reference = tables["jglue6"]
    assert "result.json" in reference["title"] and "not the card" in reference["title"]
    assert not reference.get("averages")  # its averages (61.96 / 62.28) are not the card's
    assert reference["published"]["bilingual-gpt-neox-4b-instruction-sft"]["JAQKET-v2"] == 61.17


def test_seed_000_datasets_and_templates_are_the_public_cards():
    config = prepare_config(load_card("openorca_stx"))
    stx = config["datasets"]["stx"]
    assert stx["equal_per_source"] == 4389 and stx["expect"] == 13_167
    got = {
        s["name"]: (
            "hub" if "hub" in s else "path",
            s.get("hub") or s["path"],
            s["data_dir"],
            s["template"]["prompt"],
            s["template"]["response"],
        )
        for s in stx["sources"]
    }
    assert got == STX_SOURCES
    xlsum = next(s for s in stx["sources"] if s["name"] == "xlsum")
    assert (
        xlsum["columns"] == {"article_text": "text"} and xlsum["revision"] == "refs/convert/parquet"
    )


def test_seed_004_evaluates_the_cards_own_model_states_its_counts_and_answers_in_one_shot():
    config = prepare_config(load_card("swallow_moe_4x7b_lisa"))
    assert (
        config["models"]["swallow-moe-4x7b-lisa-published"]["pretrained"]
        == "Aratako/Swallow-MoE-4x7B-lisa"
    )
    assert "swallow-moe-4x7b-lisa-published" in config["mtbench"]["models"]
    mix = config["datasets"]["lisa_mix"]
    assert {s["name"]: s["expect"] for s in mix["sources"]} == SWALLOW_EXPECT
    assert mix["expect"] == sum(SWALLOW_EXPECT.values()) == 14_327 and mix["strict"] is False
    roleplay = next(s for s in mix["sources"] if s["name"] == "roleplay")
    assert (roleplay["conversations"], roleplay["conversation_format"]) == ("text", "zephyr")
    # jp-stable FastChat matches no adapter for these hub ids: its one_shot conversation
    assert {config["models"][m]["chat_format"] for m in config["mtbench"]["models"]} == {"one_shot"}
    assert config["models"]["swallow-moe-4x7b-lisa"]["train"]["lisa_variant"] == "paper"


def test_seed_004_dry_run_lists_the_cards_own_model_in_jglue_and_mtbench(tmp_path):
    _, out = dry_run(EXPERIMENTS / "swallow_moe_4x7b_lisa.yaml", tmp_path)
    model = "swallow-moe-4x7b-lisa-published"
    assert re.search(rf"rule jglue:\n(.*\n)*?\s+output: \S*/jglue/swallow4/{model}/scores.csv", out)
    assert re.search(
        rf"rule mtbench_answer:\n(.*\n)*?\s+output: \S*model_answer/{model}.jsonl", out
    )
    assert re.search(rf"rule mtbench_judge:\n(.*\n)*?\s+output: \S*/{model}.jsonl", out)


# -- the tiny swap --------------------------------------------------------------------------


def _tiny_config(card: str, tmp_path: Path) -> dict:
    card_config = load_card(card)
    base_dirs = {name: str(tmp_path / "bases" / name) for name in base_models(card_config)}
    return tinyify(card_config, base_dirs, tmp_path / "tinydata")


def _structure(config: dict) -> dict:
    graph = graph_of(config)
    kinds = {BaseModel: "base", TrainedModel: "train", MergedModel: "merge"}
    nodes = {n: (kinds[type(graph[n])], graph[n].deps) for n in graph}
    methods = {n: (graph[n].method, graph[n].dataset) for n in graph.names(TrainedModel)}
    merges = {n: (graph[n].gate_mode, graph[n].experts_per_token) for n in graph.names(MergedModel)}
    mixes = {
        d: [
            (
                s["name"],
                s.get("columns"),
                s.get("conversations"),
                s.get("template"),
                [sorted(r) for r in s.get("rules", [])],
            )
            for s in mix["sources"]
        ]
        for d, mix in config.get("datasets", {}).items()
    }
    runs = [
        (r["suite"], r["models"], r.get("template"))
        for r in config.get("jglue", {}).get("runs", [])
    ]
    mt = config.get("mtbench", {})
    reports = {
        name: (
            r.get("models"),
            [(t["name"], t.get("source"), t.get("suite")) for t in r.get("tables", [])],
        )
        for name, r in config.get("reports", {}).items()
    }
    return {
        "nodes": nodes,
        "methods": methods,
        "merges": merges,
        "mixes": mixes,
        "runs": runs,
        "mtbench": (mt.get("models"), mt.get("turns")),
        "reports": reports,
    }


@pytest.mark.parametrize("card", CARDS)
def test_tinyify_keeps_the_structure_and_leaves_no_hub_reference(card, tmp_path):
    card_config = load_card(card)
    tiny = _tiny_config(card, tmp_path)
    assert hub_references(card_config), "a card config names hub models"
    assert hub_references(tiny) == []
    assert _structure(tiny) == _structure(card_config)
    prepare_config(copy.deepcopy(tiny))  # still a valid config
    for name, hub in base_models(card_config).items():
        assert tiny["models"][name]["pretrained"].endswith(f"bases/{name}")
        assert tiny_arch(hub) in ("llama", "gpt_neox", "mistral")
    for mix in tiny.get("datasets", {}).values():
        for source in mix["sources"]:
            assert Path(source["path"]).is_file() and "hub" not in source
    # published numbers stay wherever the tiny run still has the columns
    for name, report in card_config["reports"].items():
        for card_table, tiny_table in zip(
            report["tables"], tiny["reports"][name]["tables"], strict=True
        ):
            if tiny_table["columns"] == card_table["columns"]:
                assert tiny_table.get("published") == card_table.get("published")
            else:  # an English suite the tiny world has no data for (seed 002)
                assert card == "rinna_bilingual_4b_sft" and card_table["suite"] == "openllm"


def test_tiny_sources_have_the_columns_and_values_the_rules_keep():
    source = {
        "name": "x",
        "hub": "a/b",
        "columns": {"instruction": "text"},
        "rules": [
            {"min_chars": {"fields": ["instruction", "output"], "k": 11}},
            {"max_per_value": {"column": "source", "n": 100}},
        ],
    }
    rows = tiny_source_rows(source, "alpaca")
    assert all(len(r["text"]) >= 11 and len(r["output"]) >= 11 for r in rows)
    assert len({r["source"] for r in rows}) == 3
    custom = {
        "name": "y",
        "path": "p",
        "template": {"prompt": "{original_ja}\n\n指示\n", "response": "{simplified_ja}"},
    }
    assert {"original_ja", "simplified_ja"} <= set(tiny_source_rows(custom, "closed_qa")[0])
    conv = {"name": "z", "hub": "a/b", "conversations": "conversation"}
    turns = tiny_source_rows(conv, "alpaca")[0]["conversation"]
    assert [t["role"] for t in turns] == ["user", "assistant"]


@pytest.mark.parametrize("card", CARDS)
def test_tiny_card_dry_run_has_the_card_jobs(card, tmp_path):
    """The tiny swap's DAG has the card's jobs (plus the tiny world's, minus user files)."""
    tiny = _tiny_config(card, tmp_path)
    for path in base_models(tiny).values():
        Path(path).mkdir(parents=True)
    configfile = tmp_path / "tiny.yaml"
    configfile.write_text(
        yaml.safe_dump(tiny, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    counts, _ = dry_run(configfile, tmp_path)
    expected = dict(EXPECTED_JOBS[card], user_data=0)
    assert {rule: counts.get(rule, 0) for rule in expected} == expected
    assert not [r for r in counts if r.startswith("tiny_model")]  # bases are the given dirs


# -- end to end on the tiny world -------------------------------------------------------------


def _build_tiny_bases(card_config: dict, tiny: dict, tokenizer_dir: Path) -> None:
    """One tiny model per base model, of the hub model's family, each from its own seed
    (mergekit refuses identical experts)."""
    from jaflow.tiny import build_model

    for i, (name, path) in enumerate(base_models(tiny).items()):
        build_model(tiny_arch(base_models(card_config)[name]), tokenizer_dir, path, seed=i)


def _write(config: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_tiny_card_merges_like_the_card(tmp_path, tiny_tokenizer_dir):
    """Seed 004's merge node, on five distinct tiny Llamas: a 4-expert Mixtral, random gates."""
    card_config = load_card("swallow_moe_4x7b_lisa")
    tiny = _tiny_config("swallow_moe_4x7b_lisa", tmp_path)
    _build_tiny_bases(card_config, tiny, tiny_tokenizer_dir)
    configfile = _write(tiny, tmp_path / "tiny.yaml")
    proc = snakemake(
        ["results/tiny/models/swallow-moe-4x7b", "--cores", "1", "--configfile", str(configfile)],
        tmp_path,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    merge = json.loads((tmp_path / "results/tiny/models/swallow-moe-4x7b/merge.json").read_text())
    assert merge["architecture"] == "MixtralForCausalLM"
    assert merge["num_local_experts"] == 4 and merge["num_experts_per_tok"] == 2
    assert merge["mergekit_config"]["gate_mode"] == "random"
    assert merge["base"] == "swallow-7b"
    assert merge["experts"] == card_config["models"]["swallow-moe-4x7b"]["experts"]


@pytest.mark.workflow
@pytest.mark.parametrize("card", CARDS)
def test_tiny_card_runs_end_to_end(card, tmp_path, tiny_tokenizer_dir):
    """The card's config with tiny parts runs through real snakemake: sampling, training,
    selection, merge, JGLUE, MT-Bench and reports, and writes every target."""
    card_config = load_card(card)
    tiny = _tiny_config(card, tmp_path)
    configfile = _write(tiny, tmp_path / "tiny.yaml")
    _build_tiny_bases(card_config, tiny, tiny_tokenizer_dir)
    proc = snakemake(["--cores", "2", "--configfile", str(configfile)], tmp_path, timeout=1800)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    config = prepare_config(yaml.safe_load(configfile.read_text(encoding="utf-8")))
    from jaflow.workflow import Targets

    targets = Targets(config, graph_of(config)).all()
    missing = [t for t in targets if not (tmp_path / t).exists()]
    assert missing == []
    suites = config["jglue"]["suites"]
    for run in config["jglue"]["runs"]:
        own = {t["task"]: t.get("template") for t in suites.get(run["suite"], [])}
        for model in run["models"]:
            with open(
                tmp_path / f"results/tiny/jglue/{run['suite']}/{model}/scores.csv", encoding="utf-8"
            ) as f:
                rows = list(csv.DictReader(f))
            assert rows
            # each model is evaluated in its own run's template (seed 002: 0.5, 0.4, 0.3)
            expected = run.get("template") or config["jglue"]["template"]
            for row in rows:
                if row["task"] in JGLUE_FAMILIES and row["task"] != "xwinograd_ja":
                    assert row["template"] == (own.get(row["task"]) or expected), (model, row)
    # MARC-ja came from the rebuilt miniature (the card's recipe), with its expected counts
    marc = config["jglue"]["marc_ja"]
    assert marc is not None
    info = json.loads((tmp_path / "results/tiny/jglue/marc_ja-v1.1/manifest.json").read_text())
    assert info["counts"] == marc["expect"] and info["kept"] > sum(marc["expect"].values())
    counts = json.loads((tmp_path / "results/tiny/jglue/data/counts.json").read_text())
    assert counts["marc_ja"] == {
        "train": marc["expect"]["train"],
        "validation": marc["expect"]["valid"],
    }
    # every mix reports expected and actual rows per source
    for dataset in config["datasets"]:
        manifest = json.loads(
            (tmp_path / f"results/tiny/datasets/{dataset}/manifest.json").read_text()
        )
        assert (
            all({"expected", "actual"} <= set(s) for s in manifest["sources"])
            and "expected" in manifest
        )
    for name in graph_of(config).names(TrainedModel):
        selection = json.loads(
            (tmp_path / f"results/tiny/models/{name}/selection.json").read_text()
        )
        assert selection["metric"] == config["models"][name]["select"]["metric"]


# Rows each tiny mix keeps per source: 16 generated rows through the card's rules, shrunk.
TINY_MIX_COUNTS = {
    "openorca_stx": {
        "stx": {"snow_simplified_japanese_corpus": 6, "tydiqa-goldp": 6, "xlsum": 6}
    },  # equal samples
    "weblab_10b_sft": {
        "weblab_sft": {
            "alpaca_en": 16,
            "alpaca_ja": 16,
            "flan2021": 8,
            "flan_cot": 8,
            "flan_dialog": 8,
        }
    },
    "swallow_moe_4x7b_lisa": {
        "lisa_mix": {
            "amenokaku-code-instruct": 12,  # at most 4 per value of `source`, 3 values
            "jp-effective-instructions": 16,  # all pass min_chars k=11
            "oasst1-21k-en": 8,
            "roleplay": 8,
            "MetaMathQA": 8,
            "ichikara-instruction": 16,
        }
    },
}


@pytest.mark.parametrize("card", sorted(TINY_MIX_COUNTS))
def test_tiny_card_samples_its_mixes(card, tmp_path):
    """The card's mixes (sources, columns, templates, rules) sample for real on tiny files."""
    tiny = _tiny_config(card, tmp_path)
    for path in base_models(tiny).values():  # base models must exist; sampling never reads them
        Path(path).mkdir(parents=True)
    configfile = tmp_path / "tiny.yaml"
    configfile.write_text(
        yaml.safe_dump(tiny, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    targets = [f"results/tiny/datasets/{d}/manifest.json" for d in tiny["datasets"]]
    proc = snakemake([*targets, "--cores", "1", "--configfile", str(configfile)], tmp_path)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    for dataset, expected in TINY_MIX_COUNTS[card].items():
        manifest = json.loads(
            (tmp_path / f"results/tiny/datasets/{dataset}/manifest.json").read_text()
        )
        assert {s["name"]: s["rows_used"] for s in manifest["sources"]} == expected
        train = (
            (tmp_path / f"results/tiny/datasets/{dataset}/train.jsonl")
            .read_text(encoding="utf-8")
            .splitlines()
        )
        assert len(train) == sum(expected.values()) - 4  # 4 held out for validation
        rows = [json.loads(line) for line in train]
        assert {r["source"] for r in rows} == set(expected)
        if card == "openorca_stx":  # each STX task rendered with the card's own template
            snow = next(r for r in rows if r["source"] == "snow_simplified_japanese_corpus")
            assert snow["prompt"].startswith("元の日本語：\n") and snow["prompt"].endswith(
                "\n\nシンプルな日本語："
            )
            xlsum = next(r for r in rows if r["source"] == "xlsum")
            assert xlsum["prompt"].startswith("記事：\n") and xlsum["prompt"].endswith("\n\n要約：")
        if card == "swallow_moe_4x7b_lisa":
            assert all(r["prompt"].startswith("Below is an instruction") for r in rows)
            roleplay = [r for r in rows if r["source"] == "roleplay"]
            assert roleplay and all(
                "<|" not in r["prompt"] + r["response"]
                and "</s>" not in r["prompt"] + r["response"]
                for r in roleplay
            )
        # expected counts: the card's, recorded beside the tiny run's actual ones (a warning)
        for source, spec in zip(
            manifest["sources"], tiny["datasets"][dataset]["sources"], strict=True
        ):
            assert (source["expected"], source["actual"]) == (
                spec.get("expect"),
                expected[source["name"]],
            )
        if card == "swallow_moe_4x7b_lisa":
            assert (
                manifest["expected"]["total"] == 14_327
                and len(manifest["expected"]["mismatches"]) == 7
            )
