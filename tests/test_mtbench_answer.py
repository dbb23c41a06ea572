"""Answer generation on a tiny random model: chat formats, both turns, choices, seeding;
and the local hf judge backend on the same model (fully offline)."""

import shutil
from pathlib import Path

import pytest
from mtbench_support import filled_mtbench
from transformers import AutoTokenizer

from jaflow.data.templates import get_template
from jaflow.evaluate.mtbench.answer import ChatFormat, answer_questions
from jaflow.evaluate.mtbench.data import load_questions
from jaflow.evaluate.mtbench.generation import load_model
from jaflow.evaluate.mtbench.pipeline import judge_stage
from jaflow.io import read_jsonl, write_jsonl
from jaflow.tiny.mtbench import write_tiny_questions

TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant: {% endif %}"
)


@pytest.fixture(scope="module")
def tiny_lm(tiny_model, tmp_path_factory):
    """The shared tiny llama, and a copy whose tokenizer carries a chat template."""
    plain = tiny_model("llama")
    templated = tmp_path_factory.mktemp("mt_models") / "templated"
    shutil.copytree(plain, templated)
    tokenizer = AutoTokenizer.from_pretrained(templated)
    tokenizer.chat_template = TEMPLATE
    tokenizer.save_pretrained(templated)
    return {"plain": plain, "templated": templated}


def hf(path: Path) -> dict:
    return {
        "pretrained": str(path),
        "peft": None,
        "tokenizer": None,
        "use_fast": True,
        "trust_remote_code": False,
        "dtype": "float32",
    }


@pytest.fixture(scope="module")
def questions(tmp_path_factory):
    return load_questions(
        write_tiny_questions(tmp_path_factory.mktemp("q") / "question.jsonl", seed=1)
    )


@pytest.mark.parametrize("fmt", ["rinna_chat", "alpaca_ja", "chat_template"])
def test_answers_both_turns_in_the_models_chat_format(tiny_lm, questions, fmt):
    model_dir = tiny_lm["templated" if fmt == "chat_template" else "plain"]
    kwargs = dict(
        model_id="tiny", chat_format=fmt, max_new_tokens=6, num_choices=2, batch_size=3, seed=7
    )
    records = answer_questions(questions, hf(model_dir), **kwargs)
    assert [r["question_id"] for r in records] == [q.question_id for q in questions]
    _, tokenizer = load_model(hf(model_dir))
    for q, rec in zip(questions, records, strict=True):
        assert [c["index"] for c in rec["choices"]] == [0, 1]
        assert all(len(c["turns"]) == 2 for c in rec["choices"])
        a1 = rec["choices"][0]["turns"][0]
        conversation = [
            {"role": "user", "content": q.turns[0]},
            {"role": "assistant", "content": a1},
            {"role": "user", "content": q.turns[1]},
        ]
        if fmt == "chat_template":
            expected = tokenizer.apply_chat_template(
                conversation, tokenize=False, add_generation_prompt=True
            )
            assert expected.endswith("<s>assistant: ")
        else:
            expected = get_template(fmt).prompt_for(conversation)
        # the turn-2 prompt is the whole dialogue, with the model's own turn-1 answer, in its format
        assert rec["generate_params"]["prompt"] == expected
        params = rec["generate_params"]
        assert params["chat_format"] == fmt and params["temperature"] == {
            "writing": 0.5,
            "roleplay": 0.5,
            "extraction": 0.2,
        }.get(q.category, 0.1 if q.category in ("math", "coding", "reasoning") else 0.2)
    again = answer_questions(questions, hf(model_dir), **kwargs)
    assert again == records  # seeded: the same config gives the same answers


def test_tokenizer_without_chat_template_falls_back_to_plain(tiny_lm):
    _, tokenizer = load_model(hf(tiny_lm["plain"]))
    assert ChatFormat.resolve(None, tokenizer).name == "plain"
    assert ChatFormat.resolve("chat_template", tokenizer).name == "plain"


def test_answers_stop_where_the_next_user_turn_starts():
    assert ChatFormat("rinna_chat").clean("はい。<NL>二行目<NL>ユーザー: 次") == "はい。\n二行目"
    assert ChatFormat("alpaca_ja").clean("答え\n\n### 指示:\nほか") == "答え"
    assert ChatFormat("bilingual_chat").clean("答え\nユーザー: ほか") == "答え"


def test_hf_judge_backend_runs_offline_and_counts_failures(tiny_lm, questions, tmp_path):
    answers = [
        {
            "question_id": q.question_id,
            "model_id": "m",
            "choices": [{"index": 0, "turns": ["はい。", "いいえ。"]}],
        }
        for q in questions
    ]
    write_jsonl(tmp_path / "answers.jsonl", answers)
    write_jsonl(
        tmp_path / "question.jsonl",
        [
            {
                "question_id": q.question_id,
                "category": q.category,
                "turns": list(q.turns),
                **({"reference": list(q.reference)} if q.reference else {}),
            }
            for q in questions
        ],
    )
    mt = filled_mtbench(
        {
            "turns": [1, 2],
            "batch_size": 8,
            "judge": {
                "backend": "hf",
                "model": str(tiny_lm["plain"]),
                "max_new_tokens": 4,
                "max_failures": 16,
            },
        }
    )
    files = dict(
        answers=str(tmp_path / "answers.jsonl"),
        questions=str(tmp_path / "question.jsonl"),
        judgments=str(tmp_path / "j.jsonl"),
        scores=str(tmp_path / "s.csv"),
        cache=str(tmp_path / "cache.jsonl"),
        model_id="m",
    )
    table = judge_stage(**files, mtbench=mt)
    rows = read_jsonl(tmp_path / "j.jsonl")
    assert len(rows) == 16
    # a random tiny judge gives no rating: every judgment is kept, with raw text, and counted
    failed = [r for r in rows if r["status"] == "parse_failed"]
    assert all(len(r["raw"]) == 2 and r["score"] == -1 for r in failed)
    avg = {r["turn"]: r for r in table if r["category"] == "avg_score"}
    assert sum(avg[t]["n"] + avg[t]["n_failed"] for t in (1, 2)) == 16
    assert sum(avg[t]["n_failed"] for t in (1, 2)) == len(failed)
    cache_lines = len((tmp_path / "cache.jsonl").read_text().splitlines())
    assert cache_lines == 16 + len(failed)
    judge_stage(**files, mtbench=mt)  # fully cached: nothing is generated again
    assert len((tmp_path / "cache.jsonl").read_text().splitlines()) == cache_lines
    assert read_jsonl(tmp_path / "j.jsonl") == rows
