"""Metrics as jp-stable computes them (its lm_eval/jasquad/evaluate.py, metrics.py, utils.py).

Per-document values are on the 0-1 scale; lm-eval aggregates them. The cards print 0-100
for JSQuAD/JAQKET EM and F1 and xlsum ROUGE-2 (`CARD_SCALE`).
"""

from __future__ import annotations

import re
import string
from collections import Counter, defaultdict
from collections.abc import Sequence
from functools import lru_cache

# jp-stable's remove_punc: Japanese full-width punctuation plus ASCII punctuation.
PUNCT = set(
    "！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､、〃》「」『』【】〔〕〖〗〘〙〚〛〜〝〞〟〰〾〿–—‘’‛“”„‟…‧﹏."
)
PUNCT |= set(string.punctuation)
EMOJI_RE = re.compile(
    "[\U0001f600-\U0001f64f\U0001f300-\U0001f5ff\U0001f680-\U0001f6ff\U0001f1e0-\U0001f1ff\U00002702-\U000027b0]+"
)
NUMBER_RE = re.compile(r"(\-?[0-9\.\,]+)")
CARD_SCALE = {"exact_match": 100.0, "f1": 100.0, "rouge2": 100.0}


def normalize_answer(text: str) -> str:
    """Emoji removal, neologdn.normalize, whitespace collapse (jp-stable's normalize_answer)."""
    import emoji
    import neologdn

    text = "".join("" if emoji.is_emoji(c) else c for c in text)
    text = EMOJI_RE.sub("", text)
    return " ".join(neologdn.normalize(text).split())


@lru_cache(maxsize=1)
def _tagger():
    from fugashi import Tagger

    return Tagger("-Owakati")


def mecab_tokens(text: str) -> list[str]:
    """MeCab (fugashi + unidic-lite) word tokens of the normalised text."""
    return _tagger().parse(normalize_answer(text)).split()


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(g) for g in golds))


def _f1(prediction: str, gold: str) -> float:
    pred = [t for t in mecab_tokens(prediction) if t not in PUNCT]
    ref = [t for t in mecab_tokens(gold) if t not in PUNCT]
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def f1(prediction: str, golds: Sequence[str]) -> float:
    """Token F1 over MeCab tokens, punctuation removed, max over the gold answers."""
    return max(_f1(prediction, g) for g in golds)


class MecabRougeTokenizer:
    """rouge_score tokenizer: MeCab words of the normalised text."""

    def tokenize(self, text: str) -> list[str]:
        return mecab_tokens(text)


@lru_cache(maxsize=1)
def _rouge():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rouge2"], tokenizer=MecabRougeTokenizer())


def rouge2(prediction: str, reference: str) -> float:
    """ROUGE-2 F-measure with the MeCab tokenizer (jp-stable's rouge2_mecab, per document)."""
    return _rouge().score(reference, prediction)["rouge2"].fmeasure


def last_number(completion: str) -> int | None:
    """mgsm: the last number in the completion, as an int when it is integral."""
    matches = NUMBER_RE.findall(completion)
    if not matches:
        return None
    try:
        value = float(matches[-1].strip(".").replace(",", ""))
    except ValueError:
        return None
    return int(value) if value.is_integer() else None


# -- aggregations over per-document items (lm-eval `aggregation:` hooks) --------------------


def balanced_mean(items: Sequence[tuple[float, int]]) -> float:
    """Mean of per-class accuracies; items are (acc, gold label)."""
    by_class: dict[int, list[float]] = defaultdict(list)
    for acc, label in items:
        by_class[label].append(acc)
    return sum(sum(v) / len(v) for v in by_class.values()) / len(by_class)


def macro_f1(items: Sequence[tuple[int, int]]) -> float:
    from sklearn.metrics import f1_score

    golds, preds = zip(*items, strict=True)
    return float(f1_score(golds, preds, average="macro"))


def mcc(items: Sequence[tuple[int, int]]) -> float:
    from sklearn.metrics import matthews_corrcoef

    golds, preds = zip(*items, strict=True)
    return float(matthews_corrcoef(golds, preds))
