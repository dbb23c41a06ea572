"""Training stage: data preparation, a learnable task, real 4-bit QLoRA, selection and merging."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from train_world import make_job, train_world  # noqa: F401  (fixture)

from jaflow.errors import DataError
from jaflow.train import data, resume
from jaflow.train.history import read_log_history
from jaflow.train.recipes import build_trainer, train
from jaflow.train.select import lm_eval_scorer, select_checkpoint


@pytest.fixture(scope="module")
def tokenizer(train_world):  # noqa: F811
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(train_world["tokenizer"])


# -- data -------------------------------------------------------------------------------


def test_prompt_is_masked_and_boundary_is_exact(tokenizer):
    prompt = "### 指示:\nあつい\n\n### 応答:\n"
    ex = data.tokenize_example(tokenizer, prompt, "さむい", max_length=64)
    bos = (
        [tokenizer.bos_token_id]
        if tokenizer("a")["input_ids"][:1] == [tokenizer.bos_token_id]
        else []
    )
    n_prompt = len(bos) + len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert ex["input_ids"][: len(bos)] == bos
    assert ex["labels"][:n_prompt] == [data.IGNORE_INDEX] * n_prompt
    assert all(t != data.IGNORE_INDEX for t in ex["labels"][n_prompt:])
    assert tokenizer.decode(ex["labels"][n_prompt:]) == "さむい" + tokenizer.eos_token
    # tokenizing the joined text gives the same ids: the mask sits exactly on the boundary
    joined = tokenizer(prompt + "さむい", add_special_tokens=False)["input_ids"]
    assert ex["input_ids"][len(bos) : -1] == joined


def test_train_on_prompt_and_truncation(tokenizer):
    ex = data.tokenize_example(tokenizer, "あ" * 50, "さむい", max_length=64, train_on_prompt=True)
    assert ex["labels"] == ex["input_ids"]
    cut = data.tokenize_example(tokenizer, "あ" * 50 + "応答:", "い" * 40, max_length=20)
    assert len(cut["input_ids"]) == 20
    assert (
        sum(t != data.IGNORE_INDEX for t in cut["labels"]) >= 9
    )  # the response keeps half the budget
    assert "応答:" in tokenizer.decode(cut["input_ids"]).replace(
        " ", ""
    )  # the prompt's end survives


def test_collate_pads_per_batch_and_packing_keeps_labels(tokenizer):
    exs = [
        data.tokenize_example(tokenizer, p, r, 64)
        for p, r in [("あ", "い"), ("ああああ", "いいい")]
    ]
    batch = data.Collator(tokenizer.pad_token_id)(exs)
    assert batch["input_ids"].shape == (2, max(len(e["input_ids"]) for e in exs))
    assert batch["labels"][0, len(exs[0]["labels"]) :].eq(data.IGNORE_INDEX).all()
    assert batch["attention_mask"].sum().item() == sum(len(e["input_ids"]) for e in exs)
    flat = data.FlatCollator()(exs)
    n0, n1 = (len(e["input_ids"]) for e in exs)
    assert flat["input_ids"].shape == (1, n0 + n1) and "attention_mask" not in flat
    assert flat["position_ids"][0].tolist() == list(range(n0)) + list(range(n1))
    assert flat["labels"][0].tolist() == exs[0]["labels"] + exs[1]["labels"]  # prompts start masked


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_batch_is_the_padded_batch_without_padding(train_world, tokenizer, attn):  # noqa: F811
    """Attention honours the example boundaries of a packed row: every example's logits equal
    its logits alone, and the batch loss equals the padded batch's."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        train_world["llama"], attn_implementation=attn
    ).eval()
    rows = data.read_pairs(train_world["data"] / "train.jsonl")[:6]
    exs = [data.tokenize_example(tokenizer, r["prompt"], r["response"], 64) for r in rows]
    assert len({len(e["input_ids"]) for e in exs}) > 1  # the padded batch really pads
    padded, flat = data.Collator(tokenizer.pad_token_id)(exs), data.FlatCollator()(exs)
    with torch.no_grad():
        loss_padded = model(**padded).loss
        out = model(**flat, use_cache=False)  # as in training (load_model sets use_cache False)
        start = 0
        for e in exs:
            n = len(e["input_ids"])
            alone = model(input_ids=torch.tensor([e["input_ids"]])).logits[0]
            assert torch.allclose(out.logits[0, start : start + n], alone, atol=1e-5), attn
            start += n
    assert abs(out.loss.item() - loss_padded.item()) < 1e-5, (out.loss, loss_padded)


def test_bad_row_names_file_and_line(tmp_path):
    f = tmp_path / "train.jsonl"
    f.write_text('{"prompt": "a", "response": "b"}\n{"prompt": "a"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"train.jsonl:2: field 'response'"):
        data.read_pairs(f)


def test_incomplete_checkpoints_are_ignored(tmp_path):
    for step, files in [
        (5, ["model.safetensors", "trainer_state.json"]),
        (10, ["model.safetensors"]),
        (15, ["trainer_state.json"]),
        (20, ["adapter_model.safetensors", "trainer_state.json"]),
    ]:
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        for name in files:
            (d / name).write_text("x")
    (tmp_path / "checkpoint-25").mkdir()
    assert resume.last_complete_checkpoint(tmp_path).name == "checkpoint-20"
    assert [p.name for p in resume.remove_incomplete(tmp_path)] == [
        "checkpoint-10",
        "checkpoint-15",
        "checkpoint-25",
    ]
    assert [p.name for p in resume.checkpoints(tmp_path)] == ["checkpoint-5", "checkpoint-20"]


# -- training ---------------------------------------------------------------------------


DOWNSTREAM = "lm_eval:tiny_opposite:acc"


@pytest.fixture(scope="module")
def full_run(train_world, tmp_path_factory):  # noqa: F811
    # selected by a downstream metric: every checkpoint is a candidate, so all are kept
    out = tmp_path_factory.mktemp("full") / "full"
    job = make_job(
        train_world,
        out,
        "full",
        max_steps=40,
        eval_steps=10,
        logging_steps=10,
        select={"metric": DOWNSTREAM, "mode": "max"},
    )
    assert job.train["save_total_limit"] == 2  # the default, which a downstream metric overrides
    before = build_trainer(job).evaluate()["eval_loss"]
    trainer = train(job)
    return job, before, trainer


def test_eval_loss_drops_on_a_learnable_task(full_run):
    job, before, trainer = full_run
    rows = read_log_history(Path(job.out_dir) / "log_history.csv")
    evals = [r for r in rows if r["eval_loss"] is not None]
    assert [r["step"] for r in evals] == [10, 20, 30, 40]
    assert evals[-1]["eval_loss"] < 0.4 * before, (before, evals)
    assert all(r["train_loss"] and r["learning_rate"] == 3e-3 for r in rows)
    timings = json.loads((Path(job.out_dir) / "timings.json").read_text())["log_history"]
    assert [t["step"] for t in timings if "tokens_per_s" in t] == [
        r["step"] for r in rows if r["train_loss"]
    ]
    assert all(t["tokens_per_s"] > 0 for t in timings if "tokens_per_s" in t)
    assert [r["tokens_seen"] for r in rows] == sorted(r["tokens_seen"] for r in rows)
    state = json.loads((Path(job.out_dir) / "trainer_state.json").read_text())
    assert state["global_step"] == 40
    assert [p.name for p in resume.complete_checkpoints(job.checkpoints)] == [
        f"checkpoint-{s}" for s in (10, 20, 30, 40)
    ]


def test_select_by_eval_loss_writes_full_model(full_run, tmp_path):
    from transformers import AutoModelForCausalLM

    job, _, _ = full_run
    out = tmp_path / "models" / "full"
    sel = select_checkpoint(
        state_path=Path(job.out_dir) / "trainer_state.json",
        checkpoints_dir=job.checkpoints,
        out_dir=out,
        model_args=job.model,
        select={"metric": "eval_loss", "mode": "min"},
        merge_adapter=False,
    )
    values = {c["step"]: c["value"] for c in sel["candidates"]}
    assert sel["step"] == min(values, key=values.get) and sel["value"] == min(values.values())
    assert json.loads((out / "selection.json").read_text()) == sel
    assert sel["adapter"] is False and sel["merged"] is False
    sums = dict(
        line.split("  ")[::-1] for line in (out / "checksums.sha256").read_text().splitlines()
    )
    from jaflow.io import sha256_file

    assert sums == {"model.safetensors": sha256_file(out / "model.safetensors")}
    assert (out / "tokenizer.json").is_file()
    AutoModelForCausalLM.from_pretrained(out)


TASK_YAML = """\
task: tiny_opposite
dataset_path: json
dataset_kwargs:
  data_files:
    test: {path}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{prompt}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{label}}}}"
target_delimiter: ""
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""


def test_select_by_downstream_lm_eval_metric(full_run, train_world, tmp_path):  # noqa: F811
    import train_world as tw

    job, _, _ = full_run
    docs = []
    for i, r in enumerate(tw.rows(16, seed=7)):
        wrong = next(o for _, o in tw.PAIRS if o != r["response"])
        choices = [r["response"], wrong] if i % 2 == 0 else [wrong, r["response"]]
        docs.append(
            {"prompt": r["prompt"], "choices": choices, "label": choices.index(r["response"])}
        )
    data_file = tmp_path / "opposite.jsonl"
    data_file.write_text(
        "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8"
    )
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "tiny_opposite.yaml").write_text(TASK_YAML.format(path=data_file), encoding="utf-8")
    out = tmp_path / "models" / "down"
    select = {"metric": DOWNSTREAM, "mode": "max", "include_path": str(tasks)}
    scorer = lm_eval_scorer(select["metric"], job.model, select)
    sel = select_checkpoint(
        state_path=Path(job.out_dir) / "trainer_state.json",
        checkpoints_dir=job.checkpoints,
        out_dir=out,
        model_args=job.model,
        merge_adapter=False,
        select=select,
        score=scorer,
    )
    assert [c["step"] for c in sel["candidates"]] == [10, 20, 30, 40]
    assert sel["value"] == max(c["value"] for c in sel["candidates"])
    assert sel["value"] >= 0.75  # the trained model knows the opposites (chance is 0.5)
    assert sel["value"] >= scorer(Path(job.model["pretrained"])) + 0.2  # vs the untrained base
    assert (out / "model.safetensors").is_file()


# -- QLoRA and merging -----------------------------------------------------------------


@pytest.fixture(scope="module")
def qlora_run(train_world, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("qlora") / "qlora"
    job = make_job(
        train_world, out, "qlora", max_steps=12, eval_steps=3, logging_steps=3, learning_rate=2e-2
    )
    return job, train(job)


def test_qlora_is_real_4bit_and_adapter_loads(qlora_run):
    import bitsandbytes as bnb
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    job, trainer = qlora_run
    linears = [m for m in trainer.model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(linears) == 4 * 7  # every linear of 4 llama layers (q k v o gate up down)
    qs = linears[0].weight.quant_state
    assert qs.quant_type == "nf4" and qs.nested  # nf4 with double quantization
    assert linears[0].compute_dtype == torch.float32  # CPU compute dtype
    ckpt = resume.last_complete_checkpoint(job.checkpoints)
    assert (ckpt / "adapter_model.safetensors").is_file() and not (
        ckpt / "model.safetensors"
    ).exists()
    base = AutoModelForCausalLM.from_pretrained(job.model["pretrained"])
    model = PeftModel.from_pretrained(base, str(ckpt))
    b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert b and all(p.abs().sum() > 0 for p in b)  # B starts at zero: training moved it


def test_select_merges_adapter_into_full_weights(qlora_run, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    job, _ = qlora_run
    out = tmp_path / "merged"
    sel = select_checkpoint(
        state_path=Path(job.out_dir) / "trainer_state.json",
        checkpoints_dir=job.checkpoints,
        out_dir=out,
        model_args=job.model,
        select={},
        merge_adapter=True,
    )
    assert sel["merged"] is True and sel["adapter"] is False
    assert not (out / "adapter_config.json").exists() and (out / "model.safetensors").is_file()
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    base = AutoModelForCausalLM.from_pretrained(job.model["pretrained"], dtype=torch.float32)
    unmerged = PeftModel.from_pretrained(base, sel["checkpoint"]).eval()
    ids = torch.tensor([[1, 5, 9, 12, 30, 7]])
    with torch.no_grad():
        a, b = merged(ids).logits, unmerged(ids).logits
    assert torch.allclose(a, b, atol=1e-4), (a - b).abs().max()
    assert not torch.allclose(
        a, AutoModelForCausalLM.from_pretrained(job.model["pretrained"])(ids).logits, atol=1e-3
    )


def test_only_best_and_last_checkpoints_are_kept_by_default(qlora_run, tmp_path):
    job, trainer = qlora_run
    evals = {e["step"]: e["eval_loss"] for e in trainer.state.log_history if "eval_loss" in e}
    assert sorted(evals) == [3, 6, 9, 12]
    best = min(evals, key=evals.get)
    kept = {resume.checkpoint_step(p) for p in resume.complete_checkpoints(job.checkpoints)}
    assert {best, 12} <= kept and len(
        kept
    ) == 2  # the best, the last (and the one before if they coincide)
    sel = select_checkpoint(
        state_path=Path(job.out_dir) / "trainer_state.json",
        checkpoints_dir=job.checkpoints,
        out_dir=tmp_path / "sel",
        model_args=job.model,
        select={},
        merge_adapter=False,
    )
    assert sel["step"] == best and sel["value"] == evals[best]
    assert {c["step"]: c["kept"] for c in sel["candidates"]} == {s: s in kept for s in evals}


def test_select_keeps_adapter(qlora_run, tmp_path):
    job, _ = qlora_run
    out = tmp_path / "adapter"
    sel = select_checkpoint(
        state_path=Path(job.out_dir) / "trainer_state.json",
        checkpoints_dir=job.checkpoints,
        out_dir=out,
        model_args=job.model,
        select={},
        merge_adapter=False,
    )
    assert sel["adapter"] is True
    assert sorted(p.name for p in out.iterdir() if "token" not in p.name) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "checksums.sha256",
        "selection.json",
    ]


def test_lora_targets_gpt_neox_module_names(tiny_model):
    from transformers import AutoModelForCausalLM

    from jaflow.config.schema import filled
    from jaflow.errors import ConfigError
    from jaflow.train.builders import apply_lora

    base = AutoModelForCausalLM.from_pretrained(tiny_model("gpt_neox"))
    names = ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"]
    model = apply_lora(
        base,
        "lora",
        filled(
            "train", {"lora_r": 4, "target_modules": names, "gradient_checkpointing": False}, "t"
        ),
    )
    wrapped = {
        n.split(".lora_A")[0].split(".")[-1] for n, _ in model.named_parameters() if "lora_A" in n
    }
    assert wrapped == set(names)
    with pytest.raises(ConfigError, match="train.target_modules"):
        apply_lora(
            AutoModelForCausalLM.from_pretrained(tiny_model("gpt_neox")),
            "lora",
            filled("train", {"target_modules": ["q_proj"], "gradient_checkpointing": False}, "t"),
        )
