"""MT-Bench through real snakemake: answers, then the local hf judge, on a tiny model.

A tiny random judge almost never writes a rating: with judge.max_failures allowing it the stage
completes and says how many judgments failed to parse, in the scores CSV and in the log.
"""

import csv
import json
from pathlib import Path

import pytest

from jaflow.io import read_jsonl

pytestmark = pytest.mark.workflow

BENCH = "results/test/mtbench/japanese_mt_bench"


def test_answer_and_judge_with_the_hf_backend(run_workflow, tiny_model, tmp_path):
    model = tiny_model("llama")
    config = {
        "models": {"tiny": {"pretrained": str(model), "chat_format": "rinna_chat"}},
        "mtbench": {
            "questions": "tiny",
            "models": ["tiny"],
            "max_new_tokens": 8,
            "judge": {"backend": "hf", "model": "tiny", "max_new_tokens": 12, "max_failures": 8},
        },
    }
    scores = f"{BENCH}/scores/tiny/tiny.csv"
    proc = run_workflow(scores, config=config, default_config=False, workdir=tmp_path / "work")
    work = proc.workdir
    answers = read_jsonl(work / f"{BENCH}/model_answer/tiny.jsonl")
    questions = read_jsonl(work / "results/test/tiny/mtbench/question.jsonl")
    assert [a["question_id"] for a in answers] == [q["question_id"] for q in questions]
    assert all(a["generate_params"]["chat_format"] == "rinna_chat" for a in answers)
    assert all(len(a["choices"][0]["turns"]) == 2 for a in answers)

    judgments = read_jsonl(work / f"{BENCH}/model_judgment/tiny/tiny.jsonl")
    assert len(judgments) == len(questions) and {j["turn"] for j in judgments} == {
        1
    }  # default: turn 1
    failed = sum(j["status"] == "parse_failed" for j in judgments)
    rated = [j for j in judgments if j["status"] == "ok"]
    assert failed + len(rated) == len(judgments)
    with open(work / scores, newline="") as f:
        rows = list(csv.DictReader(f))
    avg = next(r for r in rows if r["category"] == "avg_score")
    assert int(avg["n_failed"]) == failed and int(avg["n"]) == len(rated)
    assert sum(int(r["n_failed"]) for r in rows if r["category"] != "avg_score") == failed
    log = (work / "logs/test/mtbench/japanese_mt_bench/judge_tiny_tiny.log").read_text()
    assert f"{failed} parse failure(s)" in log

    # rerunning the judge (forced) answers everything from the cache: no judge model is loaded
    cache = work / "results/cache/mtbench_judge/tiny.jsonl"
    before = cache.read_text()
    run_workflow(
        scores,
        config=config,
        default_config=False,
        workdir=work,
        args=["--forcerun", "mtbench_judge"],
    )
    assert cache.read_text() == before
    assert read_jsonl(work / f"{BENCH}/model_judgment/tiny/tiny.jsonl") == judgments
    log = (work / "logs/test/mtbench/japanese_mt_bench/judge_tiny_tiny.log").read_text()
    assert log.count("attempt 0: 8 call(s), 0 to send") == 1

    # a judge setting changes the judgments only: the answers are not generated again
    changed = {
        **config,
        "mtbench": {
            **config["mtbench"],
            "judge": {**config["mtbench"]["judge"], "max_new_tokens": 5},
        },
    }
    dry = run_workflow(scores, config=changed, default_config=False, workdir=work, args=["-n"])
    assert "rule mtbench_judge:" in dry.stdout and "rule mtbench_answer:" not in dry.stdout

    # judge prompts and reference answers are the judge's: a new prompt file, then an edit of
    # it, rerun only judge jobs
    from jaflow.evaluate.mtbench.data import load_prompt_set

    prompts = work / "my_prompts.jsonl"
    prompts.write_bytes(Path(load_prompt_set(None).source).read_bytes())
    refs = work / "refs.jsonl"
    refs.write_text(
        "".join(
            json.dumps(
                {"question_id": q["question_id"], "choices": [{"index": 0, "turns": ["参考"]}]},
                ensure_ascii=False,
            )
            + "\n"
            for q in questions
        ),
        encoding="utf-8",
    )
    for extra in ({"judge_prompts": str(prompts)}, {"reference_answers": str(refs)}):
        edited = {**config, "mtbench": {**config["mtbench"], **extra}}
        dry = run_workflow(scores, config=edited, default_config=False, workdir=work, args=["-n"])
        assert "rule mtbench_judge:" in dry.stdout and "rule mtbench_answer:" not in dry.stdout, (
            extra
        )
    # how an answer backend is asked (not what it answers) reruns nothing
    asked = {**config, "mtbench": {**config["mtbench"], "answer": {"concurrency": 3, "timeout": 5}}}
    dry = run_workflow(scores, config=asked, default_config=False, workdir=work, args=["-n"])
    assert "rule mtbench_answer:" not in dry.stdout and "rule mtbench_judge:" not in dry.stdout
    edited = {**config, "mtbench": {**config["mtbench"], "judge_prompts": str(prompts)}}
    run_workflow(scores, config=edited, default_config=False, workdir=work)
    answers_mtime = (work / f"{BENCH}/model_answer/tiny.jsonl").stat().st_mtime
    prompts.write_text(
        prompts.read_text(encoding="utf-8").replace("評価", "採点", 1), encoding="utf-8"
    )
    dry = run_workflow(scores, config=edited, default_config=False, workdir=work, args=["-n"])
    assert "rule mtbench_judge:" in dry.stdout and "rule mtbench_answer:" not in dry.stdout
    assert (work / f"{BENCH}/model_answer/tiny.jsonl").stat().st_mtime == answers_mtime


def test_pairwise_mode_is_wired(run_workflow, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-sent")  # a dry run calls no judge
    config = {
        "models": {
            "a": {"pretrained": "tiny:llama"},
            "b": {"pretrained": "tiny:llama"},
        },
        "mtbench": {
            "questions": "tiny",
            "models": ["a", "b"],
            "judge": {"backend": "openai", "model": "gpt-4o"},
            "pairwise": {"baseline": "b"},
        },
    }
    dry = run_workflow(config=config, default_config=False, args=["-n", "--forceall"])
    assert "results/test/mtbench/japanese_mt_bench/pairwise/gpt-4o/a.csv" in dry.stdout
    assert "pairwise/gpt-4o/b.csv" not in dry.stdout  # the baseline is not judged against itself
    # the judge's key variable is checked when the DAG is built: a dry run already stops
    unset = {
        **config,
        "mtbench": {
            **config["mtbench"],
            "judge": {**config["mtbench"]["judge"], "api_key_env": "JAFLOW_TEST_UNSET_KEY"},
        },
    }
    for args in (["-n", "--forceall"], []):
        proc = run_workflow(config=unset, default_config=False, args=args, check=False)
        assert proc.returncode != 0
        assert (
            "mtbench.judge.api_key_env: environment variable JAFLOW_TEST_UNSET_KEY is not set"
            in proc.stdout + proc.stderr
        )
        assert not (proc.workdir / "results").exists()  # stopped before the first job (no answers)
    bad = {**config, "mtbench": {**config["mtbench"], "pairwise": {"baseline": "nobody"}}}
    proc = run_workflow(config=bad, default_config=False, args=["-n"], check=False)
    assert proc.returncode != 0
    assert "mtbench.pairwise.baseline: unknown model 'nobody'" in proc.stdout + proc.stderr


def test_demo_judge_is_trained_to_rate(finished_demo):
    """The demo trains its tiny judge, so its judgments parse: real scores reach the report."""
    import csv

    score_files = sorted(
        (finished_demo / "results/demo/mtbench/japanese_mt_bench/scores/tiny_judge").glob("*.csv")
    )
    assert [p.stem for p in score_files] == ["tiny_llama", "tiny_qlora"]
    for path in score_files:
        rows = list(csv.DictReader(path.open()))
        categories = [r for r in rows if r["category"] != "avg_score"]
        assert len(categories) == 8
        for r in categories:
            assert int(r["n"]) >= 1 and int(r["n_failed"]) == 0 and 1 <= float(r["score"]) <= 10
    assert (
        "| - |" not in (finished_demo / "results/demo/reports/demo/tables/mtbench.md").read_text()
    )
