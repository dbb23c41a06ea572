"""Answers from an OpenAI-compatible server: a loopback server (127.0.0.1, started here) serves
the real tiny model as vLLM would, and writes `<think>` reasoning before every answer. The answers
are judged by the fake judge server end to end; the reasoning never reaches the judge."""

import shutil

import pytest
from mtbench_support import JudgeServer, ModelServer, any_rating, filled_mtbench
from transformers import AutoTokenizer

from jaflow.data.templates import get_template
from jaflow.errors import ConfigError
from jaflow.evaluate.mtbench.backends import JudgeFatal
from jaflow.evaluate.mtbench.data import load_questions
from jaflow.evaluate.mtbench.pipeline import answer_stage, judge_stage
from jaflow.io import read_jsonl
from jaflow.tiny.mtbench import write_tiny_questions

THINK = "<think>ここは推論で、採点者には見せない。</think>"
TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant: {% endif %}"
)


@pytest.fixture(scope="module")
def templated_model(tiny_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("served") / "tiny"
    shutil.copytree(tiny_model("llama"), path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.chat_template = TEMPLATE
    tokenizer.save_pretrained(path)
    return path


def hf(path) -> dict:
    return {
        "pretrained": str(path),
        "peft": None,
        "tokenizer": None,
        "use_fast": True,
        "trust_remote_code": False,
        "dtype": "float32",
    }


def answer_config(server, endpoint: str, **answer) -> dict:
    return filled_mtbench(
        {
            "max_new_tokens": 6,
            "answer": {
                "backend": "openai",
                "base_url": server.base_url,
                "endpoint": endpoint,
                "served_models": {"tiny": "served-tiny"},
                "retry_backoff": 0.01,
                **answer,
            },
        }
    )


def test_answers_from_a_server_are_judged_end_to_end_without_reasoning(
    templated_model, tmp_path, monkeypatch
):
    questions = write_tiny_questions(tmp_path / "question.jsonl", seed=0)
    answers = tmp_path / "model_answer" / "tiny.jsonl"
    with ModelServer(templated_model, "served-tiny", think=THINK) as server:
        answer_stage(
            questions=str(questions),
            output=str(answers),
            model_id="tiny",
            hf_args=hf(templated_model),
            chat_format=None,
            mtbench=answer_config(server, "chat"),
            seed=0,
        )
    records = read_jsonl(answers)
    qs = load_questions(questions)
    assert [r["question_id"] for r in records] == sorted(q.question_id for q in qs)
    assert all(r["generate_params"]["backend"] == "openai" for r in records)
    # both turns asked through the chat endpoint; turn 2 carries the model's own turn-1 answer
    assert {kind for kind, _ in server.requests} == {"chat"} and len(server.requests) == 16
    turn2 = [b for _, b in server.requests if len(b["messages"]) == 3]
    assert len(turn2) == 8 and all(b["messages"][1]["content"].startswith(THINK) for b in turn2)
    assert all(b["repetition_penalty"] == 1.1 and b["max_tokens"] == 6 for _, b in server.requests)
    # the answer file keeps the reasoning
    assert all(t.startswith(THINK) for r in records for t in r["choices"][0]["turns"])

    monkeypatch.setenv("MT_TEST_KEY", "sk-test")
    with JudgeServer(api_key="sk-test", rate_any=True) as judge:
        mt = filled_mtbench(
            {
                "turns": [1, 2],
                "judge": {
                    "backend": "openai",
                    "model": "judge-x",
                    "base_url": judge.base_url,
                    "api_key_env": "MT_TEST_KEY",
                    "concurrency": 2,
                    "retry_backoff": 0.01,
                },
            }
        )
        table = judge_stage(
            answers=str(answers),
            questions=str(questions),
            judgments=str(tmp_path / "j.jsonl"),
            scores=str(tmp_path / "s.csv"),
            cache=str(tmp_path / "cache.jsonl"),
            model_id="tiny",
            mtbench=mt,
        )
    assert len(judge.seen) == 16
    sent = [m["content"] for body in judge.seen for m in body["messages"]]
    assert not any("<think>" in t or "推論" in t or "</think>" in t for t in sent)
    rows = read_jsonl(tmp_path / "j.jsonl")
    assert all(r["status"] == "ok" and r["score"] == any_rating(r["user_prompt"]) for r in rows)
    writing = next(r for r in table if r["category"] == "writing" and r["turn"] == 1)
    assert writing["score"] == next(
        r["score"] for r in rows if r["category"] == "writing" and r["turn"] == 1
    )
    assert all(r["complete"] for r in table)


def test_completions_endpoint_gets_the_models_format_applied_client_side(templated_model, tmp_path):
    questions = write_tiny_questions(tmp_path / "question.jsonl", seed=1)
    out = tmp_path / "a.jsonl"
    with ModelServer(templated_model, "served-tiny") as server:
        answer_stage(
            questions=str(questions),
            output=str(out),
            model_id="tiny",
            hf_args=hf(templated_model),
            chat_format="rinna_chat",
            mtbench=answer_config(server, "completions"),
            seed=0,
        )
        assert {kind for kind, _ in server.requests} == {"completions"}
        records = {r["question_id"]: r for r in read_jsonl(out)}
        template = get_template("rinna_chat")
        for q in load_questions(questions):
            first = records[q.question_id]["choices"][0]["turns"][0]
            dialogue = [
                {"role": "user", "content": q.turns[0]},
                {"role": "assistant", "content": first},
                {"role": "user", "content": q.turns[1]},
            ]
            # what was sent is the rinna prompt jaflow built, and what is recorded
            assert records[q.question_id]["generate_params"]["prompt"] == template.prompt_for(
                dialogue
            )
            assert any(b["prompt"] == template.prompt_for(dialogue) for _, b in server.requests)
        assert all("<NL>ユーザー:" in b["stop"] for _, b in server.requests)
        # the tokenizer's chat template, applied here, for chat_format null
        server.requests.clear()
        answer_stage(
            questions=str(questions),
            output=str(tmp_path / "b.jsonl"),
            model_id="tiny",
            hf_args=hf(templated_model),
            chat_format=None,
            mtbench=answer_config(server, "completions"),
            seed=0,
        )
        assert all(
            b["prompt"].startswith("<s>user: ") and b["prompt"].endswith("<s>assistant: ")
            for _, b in server.requests
        )
        # a model the server does not serve: a clear, immediate failure
        with pytest.raises(
            JudgeFatal, match=r"mtbench.answer: .* refused model 'nobody' \(HTTP 404"
        ):
            answer_stage(
                questions=str(questions),
                output=str(tmp_path / "c.jsonl"),
                model_id="nobody",
                hf_args=hf(templated_model),
                chat_format="rinna_chat",
                mtbench=answer_config(server, "completions"),
                seed=0,
            )


def test_vllm_backend_needs_a_gpu(templated_model, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the vllm backend is exercised by the device check instead")
    questions = write_tiny_questions(tmp_path / "question.jsonl", seed=1)
    with pytest.raises(ConfigError, match="mtbench.answer.backend: vllm needs a CUDA GPU"):
        answer_stage(
            questions=str(questions),
            output=str(tmp_path / "a.jsonl"),
            model_id="tiny",
            hf_args=hf(templated_model),
            chat_format=None,
            mtbench=filled_mtbench({"answer": {"backend": "vllm"}}),
            seed=0,
        )


def test_an_answer_server_outage_fails_the_job_writing_nothing(
    templated_model, tmp_path, monkeypatch
):
    from jaflow.evaluate.mtbench.answer import AnswerFailed

    monkeypatch.setenv("MT_ANSWER_KEY", "sk-test")
    questions = write_tiny_questions(tmp_path / "question.jsonl", seed=1)
    out = tmp_path / "a.jsonl"
    with JudgeServer(api_key="sk-test", down_until=1000) as server:
        mt = answer_config(
            server, "chat", max_retries=1, concurrency=1, api_key_env="MT_ANSWER_KEY"
        )
        mt["answer"]["served_models"] = {}
        with pytest.raises(
            AnswerFailed, match=r"gave no answer for model 'tiny' after retries: HTTP 500"
        ):
            answer_stage(
                questions=str(questions),
                output=str(out),
                model_id="tiny",
                hf_args=hf(templated_model),
                chat_format=None,
                mtbench=mt,
                seed=0,
            )
    assert not out.exists()
