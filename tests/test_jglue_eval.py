"""End to end through the real lm-eval: a tiny model evaluated on tiny JGLUE data writes
scores.csv; and a tiny model fine-tuned on the synthetic MARC-ja task scores far above chance."""

from __future__ import annotations

import csv
import json
import random

import pytest

from jaflow.evaluate.jglue.data import materialize
from jaflow.evaluate.jglue.run import SCORE_COLUMNS
from jaflow.evaluate.jglue.run import evaluate_suite as _evaluate_suite
from jaflow.evaluate.jglue.suites import jglue_suite_tasks
from jaflow.tiny import build_model, build_tokenizer, iter_texts
from jaflow.tiny.jglue import write_marc_train, write_tiny_jglue


def hf_args(pretrained, **kw):
    """graph.hf_args of a base model at `pretrained`."""
    return dict(
        {
            "pretrained": str(pretrained),
            "peft": None,
            "tokenizer": None,
            "use_fast": True,
            "trust_remote_code": False,
            "dtype": "auto",
        },
        **kw,
    )


def evaluate_suite(**kw):
    """The job with the schema's defaults for what a test does not set."""
    kw = dict(
        {"suite": "test", "harness": "hf-causal", "seed": 1234, "loglikelihood_batch_size": 16},
        **kw,
    )
    if isinstance(kw["hf"], dict) and "use_fast" not in kw["hf"]:
        kw["hf"] = hf_args(**kw["hf"])
    return _evaluate_suite(**kw)


@pytest.fixture(scope="module")
def tiny_jglue(tmp_path_factory):
    root = tmp_path_factory.mktemp("jglue")
    write_tiny_jglue(root / "src", 40, seed=5)
    write_marc_train(root / "marc_train.jsonl", 400, seed=5)
    materialize(root / "data", root / "src")
    return root


def read_scores(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_jglue4_on_a_tiny_model_writes_scores(tiny_model, tiny_jglue, tmp_path):
    model = tiny_model("llama")
    tasks = jglue_suite_tasks({"suites": {}, "template": "0.3"}, "jglue4")
    rows = evaluate_suite(
        model="tiny",
        hf={"pretrained": str(model)},
        tasks=tasks,
        data_dir=tiny_jglue / "data",
        out_dir=tmp_path,
        limit=3,
        batch_size=1,
    )
    scores = read_scores(tmp_path / "scores.csv")
    assert list(scores[0]) == SCORE_COLUMNS
    assert len(scores) == len(rows)
    got = {(r["task"], r["metric"]) for r in scores}
    assert {
        ("jsquad", "exact_match"),
        ("jsquad", "f1"),
        ("jcommonsenseqa", "acc"),
        ("jnli", "balanced_acc"),
        ("marc_ja", "macro_f1"),
    } <= got
    by = {(r["task"], r["metric"]): r for r in scores}
    assert (
        by[("jsquad", "f1")]["num_fewshot"] == "2" and by[("marc_ja", "acc")]["num_fewshot"] == "3"
    )
    assert by[("jnli", "acc")]["template"] == "0.3" and by[("jnli", "acc")]["task_version"] == "1.3"
    assert all(
        r["n"] == "3" and 0.0 <= float(r["value"]) <= 1.0 for r in scores if r["metric"] != "mcc"
    )
    assert float(by[("jsquad", "f1")]["card_value"]) == pytest.approx(
        100 * float(by[("jsquad", "f1")]["value"])
    )
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["jaflow"]["batch_size"] == 1 and results["jaflow"]["seed"] == 1234
    samples = [json.loads(line) for line in (tmp_path / "samples_jsquad-1.1-0.3.jsonl").open()]
    assert len(samples) == 3 and samples[0]["arguments"]
    # jp-stable's order: documents shuffled with Random(42), the first `limit` evaluated
    from jaflow.evaluate.jglue.task import jp_stable_order

    valid = [
        json.loads(line) for line in (tiny_jglue / "data" / "jsquad" / "validation.jsonl").open()
    ]
    assert [s["doc"]["id"] for s in samples] == [
        valid[i]["id"] for i in jp_stable_order(len(valid))[0][:3]
    ]
    # jp-stable's generation cap: the longest gold answer in tokens, not the YAML's 256
    assert all(s["arguments"][0][1]["max_gen_toks"] < 256 for s in samples)
    assert all(s["arguments"][0][1]["until"] == ["\n"] for s in samples)


def _finetune(model_dir, rows, steps=250, lr=3e-3, batch=16, seed=0):
    """Full fine-tuning, loss on the response only (as the train stage does)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from jaflow.data.templates import get_template

    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    fmt = get_template("alpaca_ja")
    examples = []
    for r in rows:
        rendered = fmt.render(r)
        p = tok(rendered.prompt, add_special_tokens=False)["input_ids"]
        a = tok(rendered.response, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        examples.append((p + a, [-100] * len(p) + a))
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    rnd = random.Random(seed)
    model.train()
    for _ in range(steps):
        chunk = rnd.sample(examples, batch)
        width = max(len(x) for x, _ in chunk)
        ids = torch.tensor([x + [tok.pad_token_id] * (width - len(x)) for x, _ in chunk])
        labels = torch.tensor([y + [-100] * (width - len(y)) for _, y in chunk])
        mask = (
            torch.arange(width)[None, :] < torch.tensor([len(x) for x, _ in chunk])[:, None]
        ).long()
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    out = model_dir.parent / "tuned"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_finetuning_on_synthetic_marc_raises_marc_ja_accuracy(tiny_jglue, tmp_path):
    """Learnability on this stage's side: a direct full fine-tune (the workflow's own training
    stage is exercised by tests/workflow/test_jglue_workflow.py)."""
    texts = list(iter_texts([tiny_jglue / "src", tiny_jglue / "marc_train.jsonl"]))
    build_tokenizer(texts, tmp_path / "tok", vocab_size=400)
    base = build_model("llama", tmp_path / "tok", tmp_path / "base", num_layers=2, seed=0)
    rows = [json.loads(line) for line in (tiny_jglue / "marc_train.jsonl").open()]
    tuned = _finetune(base, rows)
    task = [{"task": "marc_ja", "version": "1.1", "template": "0.3", "num_fewshot": 0}]

    def acc(model, name):
        out = evaluate_suite(
            model=name,
            hf={"pretrained": str(model)},
            tasks=task,
            data_dir=tiny_jglue / "data",
            out_dir=tmp_path / name,
            limit=40,
        )
        return next(r["value"] for r in out if r["metric"] == "acc")

    before, after = acc(base, "base"), acc(tuned, "tuned")
    print(f"marc_ja acc: base {before:.3f} -> tuned {after:.3f}")
    assert before < 0.7
    assert after > 0.8


def test_evaluations_are_cached_across_experiments(tiny_model, tiny_jglue, tmp_path, monkeypatch):
    import lm_eval

    model = str(tiny_model("llama"))
    task = [{"task": "marc_ja", "version": "1.1", "template": "0.3", "num_fewshot": 1}]
    kw = dict(
        hf={"pretrained": model},
        tasks=task,
        data_dir=tiny_jglue / "data",
        limit=2,
        cache_dir=tmp_path / "cache",
    )
    first = evaluate_suite(model="base_a", out_dir=tmp_path / "a", **kw)

    def refuse(*args, **kwargs):
        raise AssertionError("lm-eval ran although the evaluation is cached")

    monkeypatch.setattr(lm_eval, "simple_evaluate", refuse)
    # another experiment, another name for the same base model: copied, not rerun
    second = evaluate_suite(model="base_b", out_dir=tmp_path / "b", **kw)
    assert [dict(r, model="base_a") for r in second] == [
        {k: str(v) for k, v in r.items()} for r in first
    ]
    assert {r["model"] for r in read_scores(tmp_path / "b" / "scores.csv")} == {"base_b"}
    assert (tmp_path / "b" / "results.json").read_text() == (
        tmp_path / "a" / "results.json"
    ).read_text()
    # a different setting is a different key
    with pytest.raises(AssertionError, match="lm-eval ran"):
        evaluate_suite(model="base_b", out_dir=tmp_path / "c", **dict(kw, limit=3))


def test_any_other_lm_eval_task_runs_with_its_own_fewshot(tiny_model, tiny_jglue, tmp_path):
    """A suite may name a plain lm-eval task (here a YAML task of its own in the include path)."""
    import shutil

    from jaflow.evaluate.jglue.run import TASKS_DIR

    tasks_dir = tmp_path / "tasks"
    shutil.copytree(TASKS_DIR, tasks_dir)
    data = tiny_jglue / "data" / "jcommonsenseqa"
    (tasks_dir / "plain_mc.yaml").write_text(
        "task: plain_mc\ndataset_path: json\n"
        f"dataset_kwargs: {{data_files: {{train: '{data}/train.jsonl', validation: '{data}/validation.jsonl'}}}}\n"
        "training_split: train\nvalidation_split: validation\nfewshot_split: train\noutput_type: multiple_choice\n"
        "doc_to_text: '{{question}}'\ndoc_to_target: label\ndoc_to_choice: '{{choices}}'\n"
        "metric_list: [{metric: acc}]\n",
        encoding="utf-8",
    )
    tasks = [
        {"task": "plain_mc", "num_fewshot": 2},
        {"task": "marc_ja", "template": "0.3", "num_fewshot": 1},
    ]
    rows = evaluate_suite(
        model="tiny",
        hf={"pretrained": str(tiny_model("llama"))},
        tasks=tasks,
        data_dir=tiny_jglue / "data",
        out_dir=tmp_path / "out",
        limit=2,
        tasks_dir=tasks_dir,
    )
    by = {(r["task"], r["metric"]): r for r in rows}
    assert (
        by[("plain_mc", "acc")]["num_fewshot"] == 2 and by[("marc_ja", "acc")]["num_fewshot"] == 1
    )
    samples = [json.loads(line) for line in (tmp_path / "out" / "samples_plain_mc.jsonl").open()]
    assert (
        samples[0]["arguments"][0][0].count("\n\n") == 2
    )  # two few-shot examples, default delimiter


def test_an_adapter_is_evaluated_through_lm_eval_peft(tiny_model, tiny_jglue, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = str(tiny_model("llama"))
    torch.manual_seed(0)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base),
        LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False),
    )
    model.save_pretrained(tmp_path / "adapter")
    task = [{"task": "marc_ja", "version": "1.1", "template": "0.5", "num_fewshot": 1}]

    def run(name, hf):
        evaluate_suite(
            model=name,
            hf=hf,
            tasks=task,
            data_dir=tiny_jglue / "data",
            out_dir=tmp_path / name,
            limit=4,
        )
        return [
            json.loads(line)["resps"]
            for line in (tmp_path / name / "samples_marc_ja-1.1-0.5.jsonl").open()
        ]

    plain = run("base", {"pretrained": base})
    adapted = run(
        "lora", {"pretrained": base, "peft": str(tmp_path / "adapter"), "tokenizer": base}
    )
    assert json.loads((tmp_path / "lora" / "results.json").read_text())["jaflow"]["model_identity"][
        "adapter"
    ]
    assert plain != adapted  # the adapter's (non-zero) LoRA weights change the log-likelihoods


def test_loglikelihood_batching_leaves_scores_unchanged(tiny_model, tiny_jglue, tmp_path):
    """jp-stable scores log-likelihoods one request at a time; jaflow batches them (right padding
    cannot change a causal model's scores) and keeps generation at batch 1: same scores."""
    import time

    model = tiny_model("llama")
    tasks = jglue_suite_tasks({"suites": {}, "template": "0.3"}, "jglue6")
    runs = {}
    for batch in (1, 16):
        start = time.perf_counter()
        rows = evaluate_suite(
            model="tiny",
            hf={"pretrained": str(model)},
            tasks=tasks,
            data_dir=tiny_jglue / "data",
            out_dir=tmp_path / str(batch),
            limit=8,
            batch_size=1,
            loglikelihood_batch_size=batch,
        )
        runs[batch] = (rows, time.perf_counter() - start)
    print(
        f"jglue6, 8 docs per task: log-likelihood batch 1 {runs[1][1]:.1f}s, batch 16 {runs[16][1]:.1f}s"
    )
    assert [(r["task"], r["metric"], r["value"]) for r in runs[16][0]] == [
        (r["task"], r["metric"], r["value"]) for r in runs[1][0]
    ]
    for name in ("jcommonsenseqa-1.1-0.3", "xwinograd_ja"):
        one, many = (
            [json.loads(line)["resps"] for line in (tmp_path / b / f"samples_{name}.jsonl").open()]
            for b in ("1", "16")
        )
        flat = (
            [float(x[0][0]) for doc in one for x in doc],
            [float(x[0][0]) for doc in many for x in doc],
        )
        assert flat[1] == pytest.approx(flat[0], abs=1e-4)


def test_results_json_is_byte_reproducible(tiny_model, tiny_jglue, tmp_path, monkeypatch):
    model = tiny_model("llama")
    task = [{"task": "jsquad", "version": "1.1", "template": "0.4", "num_fewshot": 1}]
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        monkeypatch.chdir(tmp_path / name)
        evaluate_suite(
            model=name,
            hf={"pretrained": str(model)},
            tasks=task,
            data_dir=tiny_jglue / "data",
            out_dir=tmp_path / name / "out",
            limit=3,
        )
    a, b = ((tmp_path / n / "out" / "results.json").read_text() for n in "ab")
    assert a == b
    assert " at 0x" not in a and str(tiny_jglue) not in a and str(tmp_path) not in a
    results = json.loads(a)
    assert results["jaflow"]["harness"] == {"jsquad-1.1-0.4": "hf-causal"}
    assert set(results["jaflow"]["data_sha256"]) == {
        "jsquad/train.jsonl",
        "jsquad/validation.jsonl",
    }
    assert (
        results["jaflow"]["data_sources"]["jsquad"]["validation"]["source"]
        == "jsquad-v1.1/valid-v1.1.json"
    )
    assert "date" not in results and "date" in json.loads(
        (tmp_path / "a" / "out" / "run_info.json").read_text()
    )
    scores = read_scores(tmp_path / "b" / "out" / "scores.csv")
    assert {(r["suite"], r["harness"], r["model"]) for r in scores} == {("test", "hf-causal", "b")}
