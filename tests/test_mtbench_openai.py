"""The openai judge backend, with the real `openai` client against a local chat-completions
server (127.0.0.1, started here) that injects 429 (with and without Retry-After), 500, outages,
timeouts, malformed bodies, unparsable text, 404s and a reasoning model's refusals."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from mtbench_support import JudgeServer, body_key, filled_mtbench

from jaflow.errors import ConfigError
from jaflow.evaluate.mtbench.backends import JudgeFatal, check_judge_env
from jaflow.evaluate.mtbench.judge import JudgeFailed
from jaflow.evaluate.mtbench.pipeline import judge_stage
from jaflow.io import read_jsonl, write_jsonl
from jaflow.tiny.mtbench import tiny_questions, write_tiny_questions

KEY = "sk-jaflow-secret-4e1f9c"
REPO = Path(__file__).resolve().parents[1]


def marks(qid: int, turn: int) -> int:
    return (qid * 3 + turn * 5) % 10 + 1


def setup_files(tmp_path: Path, unratable: set[int] = frozenset()) -> dict:
    """Questions and answers whose hidden marks say what the server will rate them."""
    questions = write_tiny_questions(tmp_path / "question.jsonl", seed=0)
    answers = []
    for q in tiny_questions(0):
        qid = q["question_id"]
        turns = [
            f"回答{t}です。" + ("" if qid in unratable else f"<<{marks(qid, t)}>>") for t in (1, 2)
        ]
        answers.append(
            {
                "question_id": qid,
                "answer_id": f"a{qid}",
                "model_id": "m",
                "choices": [{"index": 0, "turns": turns}],
            }
        )
    write_jsonl(tmp_path / "answers.jsonl", answers)
    out = tmp_path / "results"
    return {
        "questions": str(questions),
        "answers": str(tmp_path / "answers.jsonl"),
        "judgments": str(out / "model_judgment/j/m.jsonl"),
        "scores": str(out / "scores/j/m.csv"),
        "cache": str(out / "judge_cache/j.jsonl"),
        "model_id": "m",
    }


def mtbench_config(server: JudgeServer, **judge) -> dict:
    return filled_mtbench(
        {
            "turns": [1, 2],
            "ref_categories": ["math", "reasoning", "coding"],
            "judge": {
                "backend": "openai",
                "model": "judge-x",
                "base_url": server.base_url,
                "api_key_env": "MT_TEST_KEY",
                "concurrency": 1,
                "timeout": 0.5,
                "max_retries": 3,
                "retry_backoff": 0.01,
                "retry_max_backoff": 0.05,
                "max_new_tokens": 64,
                **judge,
            },
        }
    )


@pytest.fixture
def api_key(monkeypatch):
    monkeypatch.setenv("MT_TEST_KEY", KEY)
    return KEY


def expected_scores():
    return {
        (q["question_id"], t): float(marks(q["question_id"], t))
        for q in tiny_questions(0)
        for t in (1, 2)
    }


def test_faults_are_retried_and_scores_come_out_right(tmp_path, api_key):
    files = setup_files(tmp_path)
    faults = {1: "429", 2: "500", 3: "timeout", 6: "garbage", 9: "429", 10: "429"}
    with JudgeServer(faults, sleep=1.5, api_key=KEY) as server:
        table = judge_stage(**files, mtbench=mtbench_config(server))
    rows = read_jsonl(files["judgments"])
    assert {(r["question_id"], r["turn"]): r["score"] for r in rows} == expected_scores()
    assert all(r["status"] == "ok" for r in rows)
    garbage = [r for r in rows if len(r["raw"]) == 2]  # the unparsable one, asked once more
    assert len(garbage) == 1 and "七点" in garbage[0]["raw"][0]
    assert server.bad_auth == 0  # the key from the environment reached the server
    # each distinct call answered exactly once: 16 judgments + 1 follow-up
    assert sum(server.answered.values()) == 17 and set(server.answered.values()) == {1}
    avg = {r["turn"]: r["score"] for r in table if r["category"] == "avg_score"}
    exp = expected_scores()
    for turn in (1, 2):
        assert avg[turn] == pytest.approx(sum(exp[(q, turn)] for q in range(1, 9)) / 8)
    assert all(r["n_failed"] == 0 and r["n_errors"] == 0 for r in table)


def test_parse_failures_and_errors_are_counted_not_dropped(tmp_path, api_key):
    files = setup_files(tmp_path, unratable={2})  # question 2's answers carry no rating
    # arrivals 1-2: 429 twice with max_retries=1 -> question 1 turn 1 fails for good
    with JudgeServer({1: "429", 2: "429"}, api_key=KEY) as server:
        port = server.port
        with pytest.raises(
            JudgeFailed,
            match=r"3 of 16 judgments failed after retries \(1 error\(s\), 2 unparsable\), 0 allowed",
        ):
            judge_stage(**files, mtbench=mtbench_config(server, max_retries=1))
    assert not Path(files["judgments"]).exists() and not Path(files["scores"]).exists()
    with JudgeServer({1: "429", 2: "429"}, api_key=KEY, port=port) as server:
        judge_stage(**files, mtbench=mtbench_config(server, max_retries=1, max_failures=3))
    rows = {(r["question_id"], r["turn"]): r for r in read_jsonl(files["judgments"])}
    assert len(rows) == 16
    assert (
        rows[(1, 1)]["status"] == "error"
        and rows[(1, 1)]["score"] == -1
        and "429" in rows[(1, 1)]["error"]
    )
    for t in (1, 2):
        r = rows[(2, t)]
        assert r["status"] == "parse_failed" and r["score"] == -1
        assert r["raw"] == ["評価できません", "わかりません"]  # both texts kept
    scores = Path(files["scores"]).read_text().splitlines()
    assert any(line.startswith("m,extraction,1,,,0,1,0,False,1,judge-x,") for line in scores)
    assert any(line.startswith("m,extraction,2,,,0,1,0,False,") for line in scores)
    assert any(line.startswith("m,coding,1,,,0,0,1,False") for line in scores)
    assert any(line.startswith("m,avg_score,1,,,6,1,1,False") for line in scores)
    assert any(line.startswith("m,writing,1,") and ",True," in line for line in scores)
    # a rerun sends only the call that errored; the parse failures are final
    with JudgeServer(api_key=KEY, port=port) as server2:
        judge_stage(**files, mtbench=mtbench_config(server2, max_failures=2))
    assert sum(server2.answered.values()) == 1
    assert read_jsonl(files["judgments"])[0]["score"] == marks(1, 1)


def test_missing_or_wrong_key_fails_clearly(tmp_path, monkeypatch):
    files = setup_files(tmp_path)
    monkeypatch.delenv("MT_TEST_KEY", raising=False)
    with JudgeServer(api_key=KEY) as server:
        with pytest.raises(
            ConfigError,
            match="mtbench.judge.api_key_env: environment variable MT_TEST_KEY is not set",
        ):
            judge_stage(**files, mtbench=mtbench_config(server))
        with pytest.raises(
            ConfigError, match="mtbench.judge.api_key_env: environment variable MT_TEST_KEY"
        ):
            check_judge_env(mtbench_config(server)["judge"])  # what mtbench.smk runs before any job
        monkeypatch.setenv("MT_TEST_KEY", "sk-wrong")
        check_judge_env(mtbench_config(server)["judge"])
        with pytest.raises(JudgeFatal, match="HTTP 401"):
            judge_stage(**files, mtbench=mtbench_config(server, concurrency=4))
        assert server.bad_auth <= 4  # stops at once instead of trying every judgment
    assert not Path(files["scores"]).exists()


RUN_JUDGE = textwrap.dedent("""
    import json, sys
    import jaflow.logs
    from jaflow.evaluate.mtbench.pipeline import judge_stage
    args = json.load(open(sys.argv[1]))
    with jaflow.logs.log_to(args.pop("log")):
        judge_stage(**args)
""")


def test_killed_run_resumes_without_repeating_a_request(tmp_path, api_key):
    files = setup_files(tmp_path)
    log = tmp_path / "logs" / "judge.log"
    with JudgeServer(hang_after=7, api_key=KEY) as server:
        port = server.port
        args = tmp_path / "args.json"
        args.write_text(
            json.dumps({**files, "mtbench": mtbench_config(server, timeout=60), "log": str(log)})
        )
        script = tmp_path / "run_judge.py"
        script.write_text(RUN_JUDGE)
        env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
        proc = subprocess.Popen([sys.executable, str(script), str(args)], env=env)
        try:
            assert server.hung.wait(120), "the judge never reached the 8th request"
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
        first = set(server.answered)
        assert len(first) == 7
    assert not Path(files["judgments"]).exists() and not Path(files["scores"]).exists()
    assert len(Path(files["cache"]).read_text().splitlines()) == 7

    with JudgeServer(api_key=KEY, port=port) as server2:
        judge_stage(**files, mtbench=mtbench_config(server2))
    second = [body_key(b) for b in server2.seen]
    assert not set(second) & first, "a request answered before the kill was sent again"
    assert len(second) == len(set(second)) == 16 - 7
    rows = read_jsonl(files["judgments"])
    assert {(r["question_id"], r["turn"]): r["score"] for r in rows} == expected_scores()

    with JudgeServer(api_key=KEY, port=port) as server3:  # a third run is free
        judge_stage(**files, mtbench=mtbench_config(server3))
    assert server3.arrivals == 0

    # the key never reached any file under the output or log folders
    leaked = [
        p
        for folder in (tmp_path / "results", tmp_path / "logs")
        for p in folder.rglob("*")
        if p.is_file() and KEY.encode() in p.read_bytes()
    ]
    assert "HTTP Request: POST" in log.read_text()  # the log did record the calls
    assert not leaked


def test_pairwise_both_orders_and_disagreement_is_a_tie(tmp_path, api_key):
    from jaflow.evaluate.mtbench.pairwise import parse_verdict
    from jaflow.evaluate.mtbench.pipeline import pairwise_stage

    assert [parse_verdict(t) for t in ("[[A]]", "結論 [[B]]", "[[C]]", "A")] == [
        "A",
        "B",
        "tie",
        None,
    ]
    files = setup_files(tmp_path)
    base = [
        {
            "question_id": q["question_id"],
            "model_id": "base",
            "choices": [{"index": 0, "turns": ["基準1<<5>>", "基準2<<5>>"]}],
        }
        for q in tiny_questions(0)
    ]
    write_jsonl(tmp_path / "base.jsonl", base)
    # concurrency 1: arrivals 1 and 2 are question 1's two orders; a position-biased verdict on
    # the second (baseline shown first) makes the orders disagree -> a tie, whatever the marks say
    with JudgeServer({2: "first"}, api_key=KEY) as server:
        table = pairwise_stage(
            answers=files["answers"],
            baseline_answers=str(tmp_path / "base.jsonl"),
            questions=files["questions"],
            judgments=str(tmp_path / "pair.jsonl"),
            scores=str(tmp_path / "pair.csv"),
            cache=files["cache"],
            model_id="m",
            baseline="base",
            mtbench=mtbench_config(server, concurrency=1) | {"turns": [1]},
        )
    assert len(table) > 0
    assert server.arrivals == 16  # 8 questions x 2 orders
    rows = {r["question_id"]: r for r in read_jsonl(tmp_path / "pair.jsonl")}
    expected = {}
    for q in range(1, 9):
        m = marks(q, 1)
        expected[q] = "m" if m > 5 else "base" if m < 5 else "tie"
    first = rows[1]
    assert first["g1_winner"] == "m" and first["g2_winner"] == "base" and first["winner"] == "tie"
    expected[1] = "tie"
    assert {q: r["winner"] for q, r in rows.items()} == expected
    overall = next(r for r in table if r["category"] == "all")
    wins = sum(v == "m" for v in expected.values())
    ties = sum(v == "tie" for v in expected.values())
    assert (overall["win"], overall["tie"], overall["win"] + overall["loss"] + overall["tie"]) == (
        wins,
        ties,
        8,
    )
    assert overall["win_rate_adjusted"] == pytest.approx((wins + 0.5 * ties) / 8)


def test_outage_fails_the_job_and_a_plain_rerun_sends_only_the_missing_calls(tmp_path, api_key):
    files = setup_files(tmp_path)
    outage = {n: "500" for n in range(5, 200)}  # the endpoint dies after 4 answers and stays down
    with JudgeServer(outage, api_key=KEY) as server:
        port = server.port
        with pytest.raises(JudgeFailed) as failed:
            judge_stage(**files, mtbench=mtbench_config(server, max_retries=1))
    message = str(failed.value)
    assert (
        "12 of 16 judgments failed after retries (12 error(s), 0 unparsable), 0 allowed" in message
    )
    assert (
        "HTTP 500" in message
        and "outage" in message
        and "rerun to send only the missing calls" in message
    )
    assert server.arrivals == 4 + 12 * 2  # each failed call tried twice (max_retries 1), no more
    # no output: a failed job leaves nothing, so snakemake runs it again
    assert not Path(files["judgments"]).exists() and not Path(files["scores"]).exists()
    assert len(Path(files["cache"]).read_text().splitlines()) == 4  # every success kept
    first = set(server.answered)

    usage = tmp_path / "usage.json"
    with JudgeServer(api_key=KEY, port=port) as server2:
        table = judge_stage(
            **files,
            usage=str(usage),
            mtbench=mtbench_config(server2, price_per_million_tokens={"input": 2.0, "output": 8.0}),
        )
    second = [body_key(b) for b in server2.seen]
    assert len(second) == len(set(second)) == 12 and not set(second) & first
    rows = read_jsonl(files["judgments"])
    assert {(r["question_id"], r["turn"]): r["score"] for r in rows} == expected_scores()
    assert all(r["complete"] for r in table)
    # rows and scores say who judged with which prompts
    assert (
        rows[0]["prompt_set"]["name"] == "jaflow-demo-ja"
        and len(rows[0]["prompt_set"]["sha256"]) == 64
    )
    assert rows[0]["judge_settings"]["max_new_tokens"] == 64
    assert {r["judge_sha256"] for r in rows} == {table[0]["judge_sha256"]}
    assert table[0]["prompt_set"] == "jaflow-demo-ja" and table[0]["judge"] == "judge-x"
    # tokens behind all 16 judgments (4 from the first run's cache), 12 calls sent now; the fake
    # server bills 1 prompt + 1 completion token per reply
    spent = json.loads(usage.read_text())
    assert (spent["judgments"], spent["calls_sent_this_run"]) == (16, 12)
    assert (spent["prompt_tokens"], spent["completion_tokens"]) == (16, 16)
    assert spent["estimated_cost"] == pytest.approx((16 * 2.0 + 16 * 8.0) / 1e6)
    assert all(r["ja_ratio"] == 1.0 for r in rows)  # "回答1です。" is all Japanese letters


def test_retry_after_is_waited_and_malformed_replies_are_retried(tmp_path, api_key):
    files = setup_files(tmp_path)
    with JudgeServer({1: "retry_after", 3: "malformed"}, api_key=KEY) as server:
        judge_stage(**files, mtbench=mtbench_config(server, retry_backoff=0.01, timeout=5))
    assert server.times[1] - server.times[0] >= 1.0  # Retry-After: 1, though the backoff is 0.01 s
    assert server.times[3] - server.times[2] < 0.5  # the malformed reply: plain (short) backoff
    rows = read_jsonl(files["judgments"])
    assert {(r["question_id"], r["turn"]): r["score"] for r in rows} == expected_scores()
    events = [e for r in rows for e in r["transport"]]
    assert len(events) == 2
    assert any("HTTP 429" in e for e in events) and any("malformed JSON body" in e for e in events)


def test_404_fails_fast_once_with_the_servers_words_and_the_model(tmp_path, api_key):
    files = setup_files(tmp_path)
    with JudgeServer(api_key=KEY, models=("judge-x",)) as server:
        with pytest.raises(JudgeFatal) as fatal:
            judge_stage(**files, mtbench=mtbench_config(server, model="judge-typo"))
    message = str(fatal.value)
    assert "HTTP 404" in message and "'judge-typo'" in message and "does not exist" in message
    assert server.base_url in message
    assert server.refused["model_not_found"] == 1  # not retried
    assert not Path(files["scores"]).exists()


@pytest.mark.parametrize("effort", [None, "low"])
def test_a_reasoning_model_judge_is_adapted_to(tmp_path, api_key, effort):
    files = setup_files(tmp_path)
    with JudgeServer(api_key=KEY, reasoning=True) as server:
        judge_stage(**files, mtbench=mtbench_config(server, reasoning_effort=effort))
    rows = read_jsonl(files["judgments"])
    assert {(r["question_id"], r["turn"]): r["score"] for r in rows} == expected_scores()
    # one refusal each (concurrency 1), then every request is what the model accepts
    expected_refusals = (
        {"unsupported_value": 1} if effort else {"unsupported_parameter": 1, "unsupported_value": 1}
    )
    assert dict(server.refused) == expected_refusals
    assert all(
        b["max_completion_tokens"] == 64 and "max_tokens" not in b and "temperature" not in b
        for b in server.seen
    )
    assert all(b.get("reasoning_effort") == effort for b in server.seen)
    # configured up front: no refusal at all
    files2 = setup_files(tmp_path / "again")
    with JudgeServer(api_key=KEY, reasoning=True) as server2:
        judge_stage(
            **files2,
            mtbench=mtbench_config(server2, temperature=None, token_param="max_completion_tokens"),
        )
    assert not server2.refused and server2.arrivals == 16


def test_batch_judging_completes_and_resumes_after_a_kill(tmp_path, api_key):
    files = setup_files(tmp_path)
    log = tmp_path / "logs" / "judge.log"
    with JudgeServer(api_key=KEY) as server:
        server.batch_release.clear()  # the batch stays in progress until released
        mt = mtbench_config(server, batch=True, batch_poll_interval=0.05, timeout=5)
        args = tmp_path / "args.json"
        args.write_text(json.dumps({**files, "mtbench": mt, "log": str(log)}))
        script = tmp_path / "run_judge.py"
        script.write_text(RUN_JUDGE)
        env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
        proc = subprocess.Popen([sys.executable, str(script), str(args)], env=env)
        try:
            assert server.batch_created.wait(120), "no batch was submitted"
            for _ in range(600):  # polling means the batch is recorded in the state file
                if server.batch_polls:
                    break
                time.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert len(server.batches) == 1 and not server.answered
        state = Path(files["cache"] + ".m.batches.json")
        assert list(json.loads(state.read_text())) == ["batch_1"]
        assert not Path(files["judgments"]).exists()

        server.batch_release.set()  # the batch finishes while nobody watches; a rerun collects it
        judge_stage(**files, mtbench=mt)
        assert len(server.batches) == 1, "the killed run's batch was submitted again"
        assert sum(server.answered.values()) == 16 and set(server.answered.values()) == {1}
        assert not server.seen or all("max_tokens" in b for b in server.seen)
        assert server.arrivals == 0  # no chat call outside the batch
        rows = read_jsonl(files["judgments"])
        assert {(r["question_id"], r["turn"]): r["score"] for r in rows} == expected_scores()
        assert json.loads(state.read_text()) == {}
        polls = server.batch_polls
        judge_stage(**files, mtbench=mt)  # all cached: nothing submitted or polled
        assert len(server.batches) == 1 and server.batch_polls == polls


def test_backoff_is_jittered_and_never_shorter_than_retry_after(monkeypatch):
    import email.utils

    from jaflow.evaluate.mtbench.backends import OpenAITransport, retry_after

    assert retry_after({"retry-after": "5"}) == 5.0
    assert retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < retry_after({"retry-after": later}) <= 30
    assert retry_after({"retry-after": "soon"}) is None and retry_after({}) is None
    monkeypatch.setenv("MT_TEST_KEY", KEY)
    t = OpenAITransport(
        "m",
        base_url="http://127.0.0.1:9/v1",
        api_key_env="MT_TEST_KEY",
        timeout=1,
        max_retries=3,
        backoff=1.0,
        max_backoff=4.0,
        config_key="mtbench.judge",
    )
    delays = [t.delay(2, None) for _ in range(200)]
    assert all(2.0 <= d <= 4.0 for d in delays) and len(set(delays)) > 150  # jittered, capped
    assert all(t.delay(0, 10.0) >= 10.0 for _ in range(20))  # Retry-After beyond the cap wins
