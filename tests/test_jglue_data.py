"""JGLUE data: the real upstream files, the tiny world's files, materialisation, bad input,
generated YAMLs, suites and jp-stable's few-shot sampling."""

from __future__ import annotations

import json
import random

import pytest
from lm_eval.tasks import TaskManager

from jaflow.data.templates import get_template as get_format
from jaflow.errors import ConfigError, DataError
from jaflow.evaluate.jglue import yamls
from jaflow.evaluate.jglue.data import SOURCE_FILES, materialize, read_source
from jaflow.evaluate.jglue.run import TASKS_DIR, resolve_task, task_spec
from jaflow.evaluate.jglue.suites import BUILTIN_SUITES, jglue_suite_tasks
from jaflow.evaluate.jglue.task import JpStableSampler, jp_stable_order, stratified_sample
from jaflow.evaluate.jglue.templates import TEMPLATES, get_template
from jaflow.tiny.jglue import MARC_INSTRUCTION, write_marc_train, write_tiny_jglue


@pytest.fixture(scope="module")
def real(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("real") / "data"
    counts = materialize(out, shared_data / "jglue-v1.1")
    return out, counts


def test_reads_the_real_upstream_files(real):
    out, counts = real
    assert counts == {
        "jsquad": {"validation": 4442},
        "jcommonsenseqa": {"train": 8939, "validation": 1119},
        "jnli": {"validation": 2434},
    }
    jsquad = [json.loads(line) for line in (out / "jsquad" / "validation.jsonl").open()]
    first = next(r for r in jsquad if r["id"] == "a10336p0q0")
    assert first["title"] == "梅雨" and first["question"] == "日本で梅雨がないのは北海道とどこか。"
    assert first["answers"] == ["小笠原諸島", "小笠原諸島を除く日本", "小笠原諸島"]
    jnli = [json.loads(line) for line in (out / "jnli" / "validation.jsonl").open()]
    assert {r["label"] for r in jnli} == {0, 1, 2} and jnli[0]["label"] == 2  # neutral
    jcqa = [json.loads(line) for line in (out / "jcommonsenseqa" / "validation.jsonl").open()]
    assert jcqa[0]["choices"][jcqa[0]["label"]] == "マザーボード"


def test_real_document_renders_through_lm_eval(real):
    out, _ = real
    cfg = task_spec({"task": "jcommonsenseqa", "version": "1.1", "template": "0.4"}, out)
    task = TaskManager(include_path=str(TASKS_DIR), include_defaults=False).load([cfg])["tasks"][
        cfg["task"]
    ]
    assert len(task.eval_docs) == 1119
    doc = next(d for d in task.eval_docs if d["id"] == "8939")
    ctx = task.fewshot_context(doc, 0)
    assert ctx.endswith(
        "ユーザー: 質問：電子機器で使用される最も主要な電子回路基板の事をなんと言う？<NL>選択肢：<NL>- 掲示板"
        "<NL>- パソコン<NL>- マザーボード<NL>- ハードディスク<NL>- まな板<NL>システム: "
    )


def test_missing_field_names_file_line_and_field(tmp_path):
    path = tmp_path / "jnli-v1.1" / "valid-v1.1.json"
    path.parent.mkdir()
    good = {"sentence_pair_id": "0", "sentence1": "犬", "sentence2": "猫", "label": "neutral"}
    path.write_text(
        json.dumps(good)
        + "\n"
        + json.dumps({k: v for k, v in good.items() if k != "sentence2"})
        + "\n"
    )
    with pytest.raises(DataError, match=r"valid-v1\.1\.json:2: missing field 'sentence2'"):
        materialize(tmp_path / "out", tmp_path)
    assert not (tmp_path / "out").exists()  # nothing half-written
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(dict(good, label="maybe")) + "\n")
    with pytest.raises(DataError, match=r"bad\.json:1: field 'label' is 'maybe'"):
        read_source("jnli", bad)


def test_missing_family_data_fails_clearly(tmp_path):
    (tmp_path / "jnli").mkdir()
    with pytest.raises(DataError, match="no train data for JGLUE task family 'jnli'"):
        task_spec({"task": "jnli", "version": "1.3", "template": "0.3"}, tmp_path)


def test_tiny_world_has_every_family_in_upstream_schemas(tmp_path):
    write_tiny_jglue(tmp_path / "src", 12, seed=3)
    for files in SOURCE_FILES.values():
        for rel in files.values():
            assert (tmp_path / "src" / rel).is_file(), rel
    counts = materialize(tmp_path / "data", tmp_path / "src")
    assert set(counts) == set(SOURCE_FILES)
    assert counts["marc_ja"] == {"train": 12, "validation": 12}


def test_marc_train_renders_to_the_marc_ja_0_3_prompt(tmp_path):
    write_marc_train(tmp_path / "marc.jsonl", 20, seed=1)
    rows = [json.loads(line) for line in (tmp_path / "marc.jsonl").open()]
    assert {r["output"] for r in rows} == {"ポジティブ", "ネガティブ"}
    assert all(r["instruction"] == MARC_INSTRUCTION and r["source"] == "tiny_marc" for r in rows)
    spec = get_template("marc_ja-1.1-0.3")
    for r in rows:
        rendered = get_format("alpaca_ja").render(r)
        assert rendered.text == spec.description + spec.text({"text": r["input"]}) + r["output"]


def test_committed_yamls_equal_a_fresh_generation(tmp_path):
    yamls.generate(tmp_path)
    fresh = {p.name: p.read_text() for p in tmp_path.glob("*.yaml")}
    committed = {p.name: p.read_text() for p in TASKS_DIR.glob("*.yaml")}
    assert fresh == committed
    assert len(fresh) == len(TEMPLATES) >= 29
    for name in (
        "jsquad-1.1-0.3",
        "jsquad-1.2-0.5",
        "jcommonsenseqa-1.1-0.4",
        "jnli-1.3-0.5",
        "jnli-1.1-0.3",
        "marc_ja-1.1-0.2",
        "jaqket_v2-0.2-0.3",
        "xlsum_ja-1.0-0.3",
        "xwinograd_ja",
        "mgsm-1.0-0.3",
    ):
        assert f"{name}.yaml" in fresh


def test_suites_resolve_to_task_names():
    jglue = {"suites": {}, "template": "0.3"}
    assert [resolve_task(t) for t in jglue_suite_tasks(jglue, "jglue8")] == [
        "jcommonsenseqa-1.1-0.3",
        "jnli-1.3-0.3",
        "marc_ja-1.1-0.3",
        "jsquad-1.1-0.3",
        "jaqket_v2-0.2-0.3",
        "xlsum_ja-1.0-0.3",
        "xwinograd_ja",
        "mgsm-1.0-0.3",
    ]
    assert [t["num_fewshot"] for t in BUILTIN_SUITES["jglue8"]] == [3, 3, 3, 2, 1, 1, 0, 5]
    assert [resolve_task(t) for t in jglue_suite_tasks(jglue, "jglue4", "0.5")] == [
        "jsquad-1.1-0.5",
        "jcommonsenseqa-1.1-0.5",
        "jnli-1.3-0.5",
        "marc_ja-1.1-0.5",
    ]
    custom = {
        "suites": {
            "mine": [
                {"task": "jnli", "version": "1.1", "template": "0.4", "num_fewshot": 3},
                {"task": "arc_challenge", "num_fewshot": 25},
            ]
        },
        "template": "0.3",
    }
    assert [resolve_task(t) for t in jglue_suite_tasks(custom, "mine")] == [
        "jnli-1.1-0.4",
        "arc_challenge",
    ]
    with pytest.raises(ConfigError, match="no jp-stable task 'jnli-1.3-0.9'"):
        resolve_task({"task": "jnli", "template": "0.9"})


def test_sampler_replays_jp_stable_draws():
    train = [{"id": str(i), "label": i % 3} for i in range(30)]
    n_eval = 17
    # jp-stable: rnd = Random(42); rnd.shuffle(eval docs); per doc rnd.sample(train, k)
    rnd = random.Random(42)
    rnd.shuffle(list(range(n_eval)))
    expected = [rnd.sample(train, 3) for _ in range(4)]
    sampler = JpStableSampler(train, n_eval=n_eval)
    sampler.set_rnd(1234)  # lm-eval's fewshot seed is ignored: jp-stable's is fixed
    assert [sampler.sample(3) for _ in range(4)] == expected
    assert jp_stable_order(n_eval)[0] == (lambda o: (random.Random(42).shuffle(o), o)[1])(
        list(range(n_eval))
    )


def test_stratified_sampling_is_label_balanced():
    train = [{"id": str(i), "label": 0 if i < 20 else (1 if i < 25 else 2)} for i in range(30)]
    draws = [stratified_sample(train, 3, random.Random(s), lambda d: d["label"]) for s in range(20)]
    for d in draws:
        # ratios 20/30, 5/30, 5/30 of 3 -> int() gives 2, 0, 0; the remainder goes to a smallest class
        assert sorted(x["label"] for x in d)[:2] == [0, 0] and len(d) == 3
    jnli = JpStableSampler(train, n_eval=5, stratum=get_template("jnli-1.3-0.3").target)
    assert len(jnli.sample(3)) == 3


def test_tiny_tokenizer_splits_prompt_and_answer_at_the_boundary(tmp_path):
    """lm-eval scores choices by tokenising context and continuation apart; the tiny tokenizer
    must give the same tokens as for their concatenation (see the tiny-world notes)."""
    from jaflow.tiny import build_tokenizer, iter_texts

    write_tiny_jglue(tmp_path / "src", 12, seed=2)
    write_marc_train(tmp_path / "marc.jsonl", 20, seed=2)
    tok = build_tokenizer(
        iter_texts([tmp_path / "src", tmp_path / "marc.jsonl"]), tmp_path / "tok", vocab_size=400
    )
    doc = {
        "text": "この商品は最高です。",
        "premise": "犬が走る。",
        "hypothesis": "動物が走る。",
        "label": 0,
        "question": "甘いのは?",
        "choices": ["砂糖", "塩", "酢", "石", "水"],
    }
    for name in (
        "marc_ja-1.1-0.3",
        "marc_ja-1.1-0.5",
        "marc_ja-1.1-0.4",
        "jnli-1.3-0.3",
        "jcommonsenseqa-1.1-0.3",
    ):
        spec = get_template(name)
        ctx = spec.description + spec.text(doc)
        for choice in spec.choice_list(doc):

            def enc(s):
                return tok(s, add_special_tokens=False)["input_ids"]

            assert enc(ctx) + enc(choice) == enc(ctx + choice), (name, choice)


def test_url_sources_are_checked_against_their_sha256(tmp_path, shared_data):
    import hashlib

    src = shared_data / "jglue-v1.1" / "jcommonsenseqa-v1.1" / "valid-v1.1.json"
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    urls = {"jcommonsenseqa": {"validation": {"url": src.as_uri(), "sha256": digest}}}
    assert materialize(tmp_path / "ok", None, urls) == {"jcommonsenseqa": {"validation": 1119}}
    urls["jcommonsenseqa"]["validation"]["sha256"] = "0" * 64
    with pytest.raises(DataError, match="does not match the configured 0000"):
        materialize(tmp_path / "bad", None, urls)
    assert not (tmp_path / "bad").exists()


def _write_lines(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )


JCQA_ROW = {
    "q_id": 1,
    "question": "q",
    "choice0": "a",
    "choice1": "b",
    "choice2": "c",
    "choice3": "d",
    "choice4": "e",
    "label": 2,
}
JNLI_ROW = {
    "sentence_pair_id": "1",
    "yjcaptions_id": "x",
    "sentence1": "犬",
    "sentence2": "猫",
    "label": "neutral",
}


def test_v1_3_files_are_read_under_their_own_names_and_recorded(tmp_path):
    _write_lines(tmp_path / "src" / "jnli-v1.3" / "valid-v1.3.json", [JNLI_ROW])
    _write_lines(tmp_path / "src" / "jcommonsenseqa-v1.1" / "valid-v1.1.json", [JCQA_ROW])
    counts = materialize(tmp_path / "data", tmp_path / "src")
    assert counts == {"jnli": {"validation": 1}, "jcommonsenseqa": {"validation": 1}}
    prov = json.loads((tmp_path / "data" / "provenance.json").read_text())
    assert prov["jnli"]["validation"]["release"] == "v1.3"
    assert prov["jnli"]["validation"]["source"] == "jnli-v1.3/valid-v1.3.json"
    assert prov["jcommonsenseqa"]["validation"]["release"] == "v1.1"
    assert (
        len(prov["jnli"]["validation"]["sha256"]) == 64 and prov["jnli"]["validation"]["rows"] == 1
    )


def test_two_releases_of_one_task_or_an_unknown_one_fail(tmp_path):
    _write_lines(tmp_path / "a" / "jnli-v1.1" / "valid-v1.1.json", [JNLI_ROW])
    _write_lines(tmp_path / "a" / "jnli-v1.3" / "valid-v1.3.json", [JNLI_ROW])
    with pytest.raises(DataError, match="keep one JGLUE release"):
        materialize(tmp_path / "out", tmp_path / "a")
    _write_lines(tmp_path / "b" / "jnli-v1.2" / "valid-v1.2.json", [JNLI_ROW])
    with pytest.raises(DataError, match="release 'v1.2' is not one jaflow reads"):
        materialize(tmp_path / "out", tmp_path / "b")
    _write_lines(tmp_path / "c" / "jnli-v1.3" / "valid-v1.1.json", [JNLI_ROW])
    with pytest.raises(DataError, match="not a JGLUE v1.3 file name"):
        materialize(tmp_path / "out", tmp_path / "c")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no JGLUE file found"):
        materialize(tmp_path / "out", tmp_path / "empty")


@pytest.mark.parametrize(
    ("rel", "row", "match"),
    [
        (
            "jcommonsenseqa-v1.1/valid-v1.1.json",
            dict(JCQA_ROW, label=7),
            r"valid-v1\.1\.json:2: field 'label' is 7",
        ),
        (
            "jcommonsenseqa-v1.1/valid-v1.1.json",
            dict(JCQA_ROW, label="choice2"),
            r"valid-v1\.1\.json:2: field 'label' is 'choice2'",
        ),
        (
            "marc_ja-v1.1/valid-v1.1.json",
            {"review_id": "r", "sentence": "普通", "label": "neutral"},
            r"valid-v1\.1\.json:2: field 'label' is 'neutral'",
        ),
        (
            "jnli-v1.1/valid-v1.1.json",
            dict(JNLI_ROW, label=True),
            r"valid-v1\.1\.json:2: field 'label' is True",
        ),
    ],
)
def test_bad_labels_fail_naming_file_and_line(tmp_path, rel, row, match):
    first = {
        "jcommonsenseqa": JCQA_ROW,
        "jnli": JNLI_ROW,
        "marc_ja": {"review_id": "q", "sentence": "良い", "label": "positive"},
    }[rel.split("-v")[0]]
    _write_lines(tmp_path / rel, [first, row])
    with pytest.raises(DataError, match=match):
        materialize(tmp_path / "out", tmp_path)


def test_empty_jsquad_answers_fail_naming_file_line_and_question(tmp_path):
    qa = {"id": "q1", "question": "?", "answers": [], "is_impossible": False}
    doc = {
        "version": "v1.1",
        "data": [{"title": "t", "paragraphs": [{"context": "t [SEP] x", "qas": [qa]}]}],
    }
    path = tmp_path / "jsquad-v1.1" / "valid-v1.1.json"
    path.parent.mkdir()
    path.write_text(json.dumps(doc, indent=1))
    line = next(i for i, s in enumerate(path.read_text().splitlines(), 1) if '"q1"' in s)
    with pytest.raises(
        DataError,
        match=rf"valid-v1\.1\.json:{line}: data\[0\]\.paragraphs\[0\]\.qas\[0\] \(id q1\): "
        "field 'answers' needs at least one",
    ):
        materialize(tmp_path / "out", tmp_path)


def test_jaqket_keeps_top_five_contexts_and_drops_unanswerable_questions(tmp_path):
    def ctx(i, hit):
        return {"id": str(i), "title": f"t{i}", "text": f"x{i}", "score": 1.0, "has_answer": hit}

    rows = [
        {"qid": "a", "question": "?", "answers": ["x"], "ctxs": [ctx(i, i == 2) for i in range(8)]},
        {"qid": "b", "question": "?", "answers": ["y"], "ctxs": [ctx(i, i == 6) for i in range(8)]},
    ]
    _write_lines(tmp_path / "jaqket_v2" / "valid.jsonl", rows)
    out = read_source("jaqket_v2", tmp_path / "jaqket_v2" / "valid.jsonl")
    assert [r["id"] for r in out] == ["a"] and len(out[0]["ctxs"]) == 5
