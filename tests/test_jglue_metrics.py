"""Metrics as jp-stable computes them, on hand-made predictions with hand-computed values."""

from __future__ import annotations

import pytest

from jaflow.evaluate.jglue import metrics
from jaflow.evaluate.jglue.task import process_results
from jaflow.evaluate.jglue.templates import get_template


def test_jsquad_exact_match_plain_and_normalised():
    assert metrics.exact_match("雨季", ["雨季", "梅雨"]) == 1.0
    assert metrics.exact_match("雨", ["雨季"]) == 0.0
    # full-width letters/digits (neologdn), an emoji and surrounding spaces are normalised away
    assert metrics.exact_match(" ＡＢＣ１２３😀 ", ["ABC123"]) == 1.0
    assert metrics.normalize_answer("  雨季 😀 ") == "雨季"


def test_jsquad_f1_over_mecab_tokens():
    # MeCab (unidic-lite): 東京/の/赤い/タワー vs 東京/タワー -> 2 common; P=2/4, R=2/2, F1=2/3
    assert metrics.mecab_tokens("東京の赤いタワー") == ["東京", "の", "赤い", "タワー"]
    assert metrics.f1("東京の赤いタワー", ["東京タワー"]) == pytest.approx(2 / 3)
    # max over gold answers: 小笠原/諸島 vs 小笠原/諸島/を/除く/日本 -> P=1, R=2/5, F1=4/7; exact gold gives 1
    assert metrics.f1("小笠原諸島", ["小笠原諸島を除く日本"]) == pytest.approx(4 / 7)
    assert metrics.f1("小笠原諸島", ["小笠原諸島を除く日本", "小笠原諸島"]) == 1.0
    # punctuation tokens are dropped before counting: 雨季/。 vs 雨季
    assert metrics.f1("雨季。", ["雨季"]) == 1.0
    assert metrics.f1("晴れ", ["雨季"]) == 0.0


def test_jsquad_process_results_gives_em_and_f1():
    spec = get_template("jsquad-1.1-0.3")
    doc = {"answers": ["東京タワー", "タワー"]}
    assert process_results(spec, doc, ["東京の赤いタワー"]) == {
        "exact_match": 0.0,
        "f1": pytest.approx(2 / 3),
    }
    assert process_results(spec, doc, ["タワー"]) == {"exact_match": 1.0, "f1": 1.0}


def test_mgsm_last_number():
    assert metrics.last_number("3個と4個で7個です。答えは1,234です。") == 1234
    assert metrics.last_number("答えは12.") == 12
    assert metrics.last_number("答えは2.5") is None
    assert metrics.last_number("わかりません") is None
    spec = get_template("mgsm-1.0-0.3")
    assert process_results(spec, {"answer_number": 7}, ["3+4=7。答えは7"]) == {"acc": 1.0}


def test_rouge2_mecab():
    # bigrams of 東京/で/雨/が/降る vs 東京/で/雪/が/降る: 東京で, が降る shared of 4 each -> F=0.5
    assert metrics.rouge2("東京で雪が降る", "東京で雨が降る") == pytest.approx(0.5)


def test_multiple_choice_metrics():
    spec = get_template("marc_ja-1.1-0.3")
    # ll per choice; acc argmax; acc_norm divides by choice length in characters
    out = process_results(spec, {"label": 1}, [(-5.0, False), (-4.0, False)])
    assert out["acc"] == 1.0 and out["balanced_acc"] == (1.0, 1) and out["mcc"] == (1, 1)
    items = [(1.0, 0), (1.0, 0), (0.0, 0), (0.0, 1)]  # class 0: 2/3, class 1: 0/1
    assert metrics.balanced_mean(items) == pytest.approx((2 / 3 + 0) / 2)
    assert metrics.macro_f1([(0, 0), (1, 1), (0, 1), (1, 1)]) == pytest.approx((2 / 3 + 0.8) / 2)
    jcqa = get_template("jcommonsenseqa-1.1-0.3")
    doc = {"label": 1, "choices": ["あ", "いいい", "う", "え", "お"]}
    lls = [(-2.0, False), (-3.0, False), (-9.0, False), (-9.0, False), (-9.0, False)]
    assert process_results(jcqa, doc, lls) == {"acc": 0.0, "acc_norm": 1.0}


def test_xwinograd_acc():
    spec = get_template("xwinograd_ja")
    assert process_results(spec, {"answer": 2}, [(-9.0, False), (-3.0, False)]) == {"acc": 1.0}
    assert process_results(spec, {"answer": 1}, [(-3.0, False), (-3.0, False)]) == {"acc": 0.0}


def test_tidy_scores_keeps_lm_eval_filters_apart():
    from jaflow.evaluate.jglue.run import tidy_scores

    results = {
        "results": {
            "gsm8k": {
                "alias": "gsm8k",
                "exact_match,strict-match": 0.25,
                "exact_match_stderr,strict-match": 0.1,
                "exact_match,flexible-extract": 0.5,
                "exact_match_stderr,flexible-extract": 0.2,
            },
            "marc_ja-1.1-0.3": {"acc,none": 0.75, "acc_stderr,none": 0.05},
        },
        "n-samples": {"gsm8k": {"effective": 4}, "marc_ja-1.1-0.3": {"effective": 8}},
    }
    rows = {
        (r["task"], r["metric"]): r
        for r in tidy_scores("m", "s", results, {"gsm8k": {"num_fewshot": 5}}, {})
    }
    assert rows[("gsm8k", "exact_match,strict-match")]["value"] == 0.25
    assert rows[("gsm8k", "exact_match,flexible-extract")]["stderr"] == 0.2
    assert rows[("marc_ja", "acc")]["value"] == 0.75 and rows[("marc_ja", "acc")]["n"] == 8
