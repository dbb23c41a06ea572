"""MT-Bench pieces without a model: parsing, prompts, inputs, cache, scores, categories."""

import json
import math

import pytest

from jaflow.errors import DataError
from jaflow.evaluate.mtbench import AVG_ROW, CATEGORIES, RADAR_ORDER, parse_rating, radar_order
from jaflow.evaluate.mtbench.categories import TEMPERATURES, display_name, temperature_for
from jaflow.evaluate.mtbench.data import load_judge_prompts, load_questions, load_references
from jaflow.evaluate.mtbench.judge import Call, JudgeCache, prompt_name, single_requests
from jaflow.evaluate.mtbench.scores import score_rows, write_scores_csv
from jaflow.io import read_jsonl
from jaflow.tiny.mtbench import tiny_questions, write_tiny_questions, write_tiny_reference_answers


@pytest.mark.parametrize(
    "text, expected",
    [
        ("評価：[[5]]", 5.0),
        ("[8]", 8.0),
        ("Rating: [[7.5]]", 7.5),
        ("【7】", None),
        ("7/10", None),
        ("理由…[[3]] のちに [[9]]", 3.0),
        ("[[10]]", 10.0),
    ],
)
def test_parse_rating_as_fastchat(text, expected):
    assert parse_rating(text) == expected


def test_category_orders_and_temperatures():
    assert list(CATEGORIES) == sorted(CATEGORIES)  # the cards' table order
    assert [display_name(c) for c in RADAR_ORDER] == [
        "Writing",
        "Roleplay",
        "Reasoning",
        "Math",
        "Coding",
        "Extraction",
        "STEM",
        "Humanities",
    ]
    assert radar_order(["stem", "zzz", "writing"]) == ["writing", "stem", "zzz"]
    assert temperature_for("math") == 0.1 and temperature_for("other") == 0.7
    assert temperature_for("math", {"math": 0.0}) == 0.0
    assert TEMPERATURES["writing"] == 0.5


def _published_judgments(choices=1):
    """Hand-made judgments whose category means are the Swallow-7b-instruct row of seed 004."""
    means = dict(zip(CATEGORIES, [2.0, 4.6, 5.4, 1.7, 2.8, 5.0, 5.9, 6.9], strict=True))
    rows, qid = [], 0
    for cat, m in means.items():
        for delta in (-0.5, 0.5):
            qid += 1
            for c in range(choices):
                shift = (0.25 if c == 0 else -0.25) if choices > 1 else 0.0
                rows.append(
                    {
                        "question_id": qid,
                        "category": cat,
                        "turn": 1,
                        "choice": c,
                        "score": m + delta + shift,
                        "status": "ok",
                    }
                )
    return rows, means


def test_scores_category_means_and_avg_score():
    rows, means = _published_judgments()
    # failures and errors are counted but do not move the means
    rows.append(
        {
            "question_id": 99,
            "category": "math",
            "turn": 1,
            "choice": 0,
            "score": -1,
            "status": "parse_failed",
        }
    )
    rows.append(
        {
            "question_id": 98,
            "category": "math",
            "turn": 1,
            "choice": 0,
            "score": -1,
            "status": "error",
        }
    )
    table = score_rows(rows, "swallow")
    by_cat = {r["category"]: r for r in table}
    assert [r["category"] for r in table] == [*CATEGORIES, AVG_ROW]
    for cat, m in means.items():
        assert by_cat[cat]["score"] == pytest.approx(m)
    assert by_cat[AVG_ROW]["score"] == pytest.approx(34.3 / 8) == pytest.approx(4.2875)
    assert (by_cat["math"]["n"], by_cat["math"]["n_failed"], by_cat["math"]["n_errors"]) == (
        2,
        1,
        1,
    )
    assert (by_cat[AVG_ROW]["n"], by_cat[AVG_ROW]["n_failed"], by_cat[AVG_ROW]["n_errors"]) == (
        16,
        1,
        1,
    )
    assert math.isnan(by_cat["math"]["stdev"])  # one choice: no spread to report


def test_scores_stdev_over_choices_and_missing_category(tmp_path):
    rows, means = _published_judgments(choices=2)
    table = {r["category"]: r for r in score_rows(rows, "m")}
    # choice means differ by 0.5 in every category: sample stdev 0.5 / sqrt(2)
    assert table["writing"]["stdev"] == pytest.approx(0.5 / math.sqrt(2))
    assert table[AVG_ROW]["stdev"] == pytest.approx(0.5 / math.sqrt(2))
    assert table[AVG_ROW]["score"] == pytest.approx(4.2875)
    # a category with no valid rating leaves avg_score empty rather than a mean of the rest
    for r in rows:
        if r["category"] == "coding":
            r["score"], r["status"] = -1, "parse_failed"
    table = score_rows(rows, "m")
    avg = [r for r in table if r["category"] == AVG_ROW][0]
    assert math.isnan(avg["score"]) and avg["n_failed"] == 4
    out = tmp_path / "s.csv"
    write_scores_csv(str(out), table)
    lines = out.read_text().splitlines()
    assert lines[0] == (
        "model,category,turn,score,stdev,n,n_failed,n_errors,complete,"
        "ja_ratio,judge,judge_sha256,prompt_set,prompt_sha256"
    )
    assert lines[-1].startswith("m,avg_score,1,,") and ",False," in lines[-1]
    assert [r["complete"] for r in table if r["category"] == "writing"] == [True]


def test_both_turns_add_pooled_rows():
    rows = [
        {"question_id": 1, "category": "math", "turn": t, "choice": 0, "score": s, "status": "ok"}
        for t, s in ((1, 4.0), (2, 8.0))
    ]
    table = score_rows(rows, "m")
    assert [(r["category"], r["turn"], r["score"]) for r in table] == [
        ("math", 1, 4.0),
        (AVG_ROW, 1, 4.0),
        ("math", 2, 8.0),
        (AVG_ROW, 2, 8.0),
        ("math", "all", 6.0),
        (AVG_ROW, "all", 6.0),
    ]


def test_tiny_questions_schema(tmp_path):
    path = write_tiny_questions(tmp_path / "q.jsonl", seed=3)
    qs = load_questions(path)
    assert sorted(q.category for q in qs) == list(CATEGORIES)
    assert all(len(q.turns) == 2 for q in qs)
    assert [q.question_id for q in qs] == list(range(1, 9))
    refs = load_references(None, qs)
    assert {q.category for q in qs if q.question_id in refs} == {"math", "reasoning", "coding"}
    ref_file = write_tiny_reference_answers(tmp_path / "ref.jsonl", seed=3)
    assert (
        load_references(ref_file, [q.__class__(q.question_id, q.category, q.turns) for q in qs])
        == refs
    )
    assert tiny_questions(3) == tiny_questions(3)


def test_bad_question_file_names_file_and_line(tmp_path):
    path = tmp_path / "question.jsonl"
    path.write_text(
        '{"question_id": 1, "category": "math", "turns": ["a", "b"]}\n'
        '{"question_id": 2, "category": "math"}\n',
        encoding="utf-8",
    )
    with pytest.raises(
        DataError, match=r"question.jsonl:2: field 'turns' must be a non-empty list"
    ):
        load_questions(path)
    path.write_text('{"question_id": 1, "category": "math", "turns": ["a"]}\nnot json\n')
    with pytest.raises(DataError, match=r"question.jsonl:2: invalid JSON"):
        load_questions(path)


def _answers(qs, text="答え"):
    return {
        q.question_id: {
            "question_id": q.question_id,
            "choices": [
                {"index": 0, "turns": [f"{text}1-{q.question_id}", f"{text}2-{q.question_id}"]}
            ],
        }
        for q in qs
    }


def test_requests_pick_fastchat_prompts_and_show_the_dialogue(tmp_path):
    qs = load_questions(write_tiny_questions(tmp_path / "q.jsonl"))
    prompts = load_judge_prompts(None)
    assert {p.output_format for p in prompts.values() if p.type == "single"} == {"[[評価]]"}
    reqs = single_requests(
        qs,
        _answers(qs),
        load_references(None, qs),
        prompts,
        model="m",
        judge_model="j",
        turns=[1, 2],
    )
    assert len(reqs) == 16 and len({r.key for r in reqs}) == 16
    math_q = next(q for q in qs if q.category == "math")
    t1 = next(r for r in reqs if r.question_id == math_q.question_id and r.turn == 1)
    t2 = next(r for r in reqs if r.question_id == math_q.question_id and r.turn == 2)
    assert t1.prompt.name == "single-math-v1" and t2.prompt.name == "single-math-v1-multi-turn"
    assert (
        math_q.reference[0] in t1.user_prompt
        and f"答え2-{math_q.question_id}" not in t1.user_prompt
    )
    for text in (
        *math_q.turns,
        *math_q.reference,
        f"答え1-{math_q.question_id}",
        f"答え2-{math_q.question_id}",
    ):
        assert text in t2.user_prompt  # the multi-turn prompt sees the whole dialogue
    assert prompt_name("writing", 2, ["math"]) == "single-v1-multi-turn"
    # keys change with the answer, the judge and the prompt; not with anything else
    again = single_requests(
        qs,
        _answers(qs),
        load_references(None, qs),
        prompts,
        model="m",
        judge_model="j",
        turns=[1, 2],
    )
    assert [r.key for r in again] == [r.key for r in reqs]
    other = single_requests(
        qs,
        _answers(qs, "別"),
        load_references(None, qs),
        prompts,
        model="m",
        judge_model="j",
        turns=[1],
    )
    assert not {r.key for r in other} & {r.key for r in reqs}


def test_jp_stable_style_prompt_file_fails_clearly_for_turn_2(tmp_path):
    """jp-stable's judge_ja_prompts.jsonl has no multi-turn prompts (its issue #16: KeyError)."""
    prompts_file = tmp_path / "judge_ja_prompts.jsonl"
    own = load_judge_prompts(None)
    with open(prompts_file, "w", encoding="utf-8") as f:
        for name in ("single-v1", "single-math-v1"):
            p = own[name]
            f.write(
                json.dumps(
                    {
                        "name": p.name,
                        "type": p.type,
                        "system_prompt": p.system_prompt,
                        "prompt_template": p.prompt_template,
                        "output_format": p.output_format,
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
    qs = load_questions(write_tiny_questions(tmp_path / "q.jsonl"))
    prompts = load_judge_prompts(prompts_file)
    with pytest.raises(
        DataError,
        match=r"judge_ja_prompts.jsonl: no judge prompt named 'single-math-v1-multi-turn'.*mtbench.turns: \[1\]",
    ):
        single_requests(
            qs,
            _answers(qs),
            load_references(None, qs),
            prompts,
            model="m",
            judge_model="j",
            turns=[1, 2],
            prompts_source=str(prompts_file),
        )
    assert (
        len(
            single_requests(
                qs,
                _answers(qs),
                load_references(None, qs),
                prompts,
                model="m",
                judge_model="j",
                turns=[1],
            )
        )
        == 8
    )
    no_refs = [q.__class__(q.question_id, q.category, q.turns) for q in qs]
    with pytest.raises(DataError, match="needs a reference answer: set mtbench.reference_answers"):
        single_requests(no_refs, _answers(qs), {}, prompts, model="m", judge_model="j")


def test_cache_survives_a_line_cut_by_a_kill(tmp_path):
    qs = load_questions(write_tiny_questions(tmp_path / "q.jsonl"))
    reqs = single_requests(
        qs,
        _answers(qs),
        load_references(None, qs),
        load_judge_prompts(None),
        model="m",
        judge_model="j",
    )
    path = tmp_path / "cache.jsonl"
    cache = JudgeCache(path)
    cache.put(Call(reqs[0], 0, reqs[0].messages), "評価：[[4]]")
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"key": "half a li')  # killed mid-write
    cache = JudgeCache(path)
    cache.put(Call(reqs[1], 0, reqs[1].messages), "評価：[[6]]")
    reread = JudgeCache(path)
    assert reread.get(Call(reqs[0], 0, reqs[0].messages)) == "評価：[[4]]"
    assert reread.get(Call(reqs[1], 0, reqs[1].messages)) == "評価：[[6]]"
    assert len(reread.outputs) == 2


def test_inputs_load_from_a_url(tmp_path):
    """Question, reference and prompt files may be URLs (here a loopback HTTP server)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    write_tiny_questions(tmp_path / "question.jsonl", seed=2)
    write_tiny_reference_answers(tmp_path / "ref.jsonl", seed=2)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        qs = load_questions(f"{url}/question.jsonl")
        assert qs == load_questions(tmp_path / "question.jsonl")
        assert load_references(f"{url}/ref.jsonl", qs) == load_references(None, qs)
    finally:
        httpd.shutdown()
        httpd.server_close()


class CountingJudge:
    """A judge backend that rates every answer 5 and counts what it is sent (no model needed)."""

    name = "counting"

    def __init__(self):
        self.sent = []

    def run(self, calls, on_result):
        for call in calls:
            self.sent.append(call.messages)
            on_result(call, "評価：[[5]]", None)


def _judge_files(tmp_path, answers):
    from jaflow.io import write_jsonl

    q = write_tiny_questions(tmp_path / "question.jsonl", seed=0)
    qs = load_questions(q)
    write_jsonl(
        tmp_path / "answers.jsonl",
        [
            {"question_id": q.question_id, "choices": [{"index": 0, "turns": list(answers(q))}]}
            for q in qs
        ],
    )
    return dict(
        answers=str(tmp_path / "answers.jsonl"),
        questions=str(q),
        judgments=str(tmp_path / "j.jsonl"),
        scores=str(tmp_path / "s.csv"),
        cache=str(tmp_path / "cache.jsonl"),
        model_id="m",
    )


def test_cache_is_keyed_by_the_judges_identity_not_its_name(tmp_path):
    """A retrained workflow-made hf judge (new weights, new checksums.sha256) misses the cache;
    the same weights under another name hit it; an API judge's endpoint is part of its identity."""
    from mtbench_support import filled_mtbench

    from jaflow.evaluate.mtbench.pipeline import judge_stage

    judge_dir = tmp_path / "judge_model"
    judge_dir.mkdir()
    (judge_dir / "checksums.sha256").write_text("aaaa  model.safetensors\n")
    judge_hf = {"pretrained": str(judge_dir), "peft": None, "tokenizer": None}
    files = _judge_files(tmp_path, lambda q: ("答え", "答え2"))

    def run(name="tiny_judge", **judge):
        backend = CountingJudge()
        mt = filled_mtbench({"judge": {"backend": "hf", "model": name, **judge}})
        judge_stage(**files, mtbench=mt, judge_hf=judge_hf, backend=backend)
        return len(backend.sent)

    assert run() == 8
    assert run() == 0  # cached
    assert run(name="renamed_judge") == 0  # same weights, another name: still cached
    (judge_dir / "checksums.sha256").write_text("bbbb  model.safetensors\n")  # retrained
    assert run() == 8
    assert run(max_new_tokens=16) == 8  # a setting that changes the request
    rows = read_jsonl(files["judgments"])
    assert rows[0]["judge_settings"] == {"max_new_tokens": 16, "temperature": 0}

    from jaflow.evaluate.mtbench.backends import judge_identity

    api = filled_mtbench({"judge": {"backend": "openai", "model": "gpt-x"}})["judge"]
    assert judge_identity(api, None)["base_url"] == "https://api.openai.com/v1"
    assert judge_identity(api, None) != judge_identity(
        {**api, "base_url": "http://gpu:8000/v1"}, None
    )


def test_reasoning_is_stripped_before_judging_and_kept_in_the_answer(tmp_path):
    from mtbench_support import filled_mtbench

    from jaflow.evaluate.mtbench.judge import strip_reasoning
    from jaflow.evaluate.mtbench.pipeline import judge_stage

    assert strip_reasoning("<think>考える\n長く</think>\n答えです") == "答えです"
    assert strip_reasoning("考える</think>答え") == "答え"  # the template opened the block
    assert strip_reasoning("<think>途中で切れた") == ""
    assert strip_reasoning("a<think>x</think>b<think>y</think>c") == "abc"
    assert strip_reasoning("  答え\n") == "  答え\n"  # no tags: untouched
    files = _judge_files(
        tmp_path, lambda q: (f"<think>秘密{q.question_id}</think>答え", "<think>秘密</think>答え2")
    )
    backend = CountingJudge()
    judge_stage(
        **files,
        mtbench=filled_mtbench({"turns": [1, 2], "judge": {"backend": "hf", "model": "j"}}),
        judge_hf={"pretrained": str(tmp_path)},
        backend=backend,
    )
    assert len(backend.sent) == 16
    assert not any(
        "秘密" in m["content"] or "think" in m["content"] for msgs in backend.sent for m in msgs
    )
    assert "<think>秘密1</think>" in (tmp_path / "answers.jsonl").read_text()
    kept = CountingJudge()  # strip_reasoning: false shows the judge everything
    judge_stage(
        **{**files, "cache": str(tmp_path / "c2.jsonl")},
        backend=kept,
        judge_hf={"pretrained": str(tmp_path)},
        mtbench=filled_mtbench(
            {"strip_reasoning": False, "judge": {"backend": "hf", "model": "j"}}
        ),
    )
    assert all("<think>秘密" in msgs[-1]["content"] for msgs in kept.sent)


def test_prompt_sets_are_named_and_pinned_by_sha256(tmp_path):
    import hashlib

    from jaflow.evaluate.mtbench.data import JP_STABLE_JUDGE_PROMPTS, load_prompt_set

    demo = load_prompt_set(None)
    assert demo.name == "jaflow-demo-ja" and "single-v1-multi-turn" in demo.prompts
    path = tmp_path / "judge_ja_prompts.jsonl"
    lines = [
        json.dumps(
            {
                "name": n,
                "type": "single",
                "system_prompt": "s",
                "prompt_template": "{question}{answer}",
                "output_format": "[[評価]]",
            },
            ensure_ascii=False,
        )
        for n in ("single-v1", "single-math-v1")
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    by_path = load_prompt_set(str(path))
    assert (by_path.name, by_path.sha256) == ("judge_ja_prompts", sha)
    pinned = load_prompt_set({"name": "jp-stable", "source": str(path), "sha256": sha})
    assert pinned.identity == {"name": "jp-stable", "sha256": sha}
    with pytest.raises(
        DataError, match=f"mtbench.judge_prompts.sha256: .* has sha256 {sha}, the config pins 0+"
    ):
        load_prompt_set({"name": "jp-stable", "source": str(path), "sha256": "0" * 64})
    assert JP_STABLE_JUDGE_PROMPTS["source"].startswith(
        "https://raw.githubusercontent.com/Stability-AI/FastChat/e37eb28"
    )


def test_japanese_ratio_catches_answers_in_the_wrong_language():
    from jaflow.evaluate.mtbench.judge import japanese_ratio

    assert japanese_ratio("東京は日本の首都です。") == 1.0
    assert japanese_ratio("Tokyo is the capital.") == 0.0
    assert japanese_ratio("東京 is") == pytest.approx(2 / 4)
    assert japanese_ratio("123 !?") is None
    rows = [
        {
            "question_id": i,
            "category": "math",
            "turn": 1,
            "choice": 0,
            "score": 5,
            "status": "ok",
            "ja_ratio": r,
        }
        for i, r in enumerate((1.0, 0.5, None))
    ]
    assert score_rows(rows, "m")[0]["ja_ratio"] == pytest.approx(0.75)


def test_judges_compared_on_the_same_answers(tmp_path):
    from jaflow.evaluate.mtbench.compare import judge_table
    from jaflow.evaluate.mtbench.judge import JudgeInfo

    def scores(judge, offset, failed=()):
        rows = [
            {
                "question_id": i,
                "category": c,
                "turn": 1,
                "choice": 0,
                "score": -1 if c in failed else 5 + offset,
                "status": "parse_failed" if c in failed else "ok",
            }
            for i, c in enumerate(("math", "writing"))
        ]
        info = JudgeInfo(
            judge, {"backend": "openai", "model": judge}, {}, {"name": "jp", "sha256": "0" * 64}
        )
        path = tmp_path / judge / "m.csv"
        path.parent.mkdir()
        write_scores_csv(str(path), score_rows(rows, "m", judge=info))
        return path

    table = judge_table([scores("gpt-a", 0), scores("gpt-b", 2, failed=("writing",))])
    assert list(table.columns) == ["model", "category", "gpt-a [jp]", "gpt-b [jp]", "spread"]
    by_cat = {r["category"]: r for r in table.to_dict("records")}
    assert list(by_cat) == ["math", "writing", AVG_ROW]
    assert by_cat["math"]["gpt-a [jp]"] == "5.00" and by_cat["math"]["gpt-b [jp]"] == "7.00"
    assert by_cat["math"]["spread"] == "2.00"
    assert by_cat["writing"]["gpt-b [jp]"] == "*"  # no valid rating, and marked incomplete
    assert by_cat[AVG_ROW]["gpt-b [jp]"] == "*"
