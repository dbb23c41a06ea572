"""Golden prompts: lm-eval's own rendering of generated jp-stable tasks equals the reference
strings (jp-stable's templates, written out here by hand) character for character."""

from __future__ import annotations

import json

import pytest
from lm_eval.api.samplers import FirstNSampler
from lm_eval.tasks import TaskManager

from jaflow.evaluate.jglue.run import TASKS_DIR, task_spec

ALPACA = "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。\n\n"

SQUAD = [
    {
        "id": "t0",
        "title": "京都",
        "context": "京都 [SEP] 京都では抹茶が有名です。",
        "question": "京都で有名なのは?",
        "answers": ["抹茶"],
    },
    {
        "id": "t1",
        "title": "札幌",
        "context": "札幌 [SEP] 札幌では雪祭りがあります。",
        "question": "札幌の祭りは?",
        "answers": ["雪祭り"],
    },
    {
        "id": "v0",
        "title": "東京",
        "context": "東京 [SEP]  東京には塔があります。 ",
        "question": "東京に何がある?",
        "answers": ["塔"],
    },
]
JCQA = [
    {"id": "0", "question": "甘いのは?", "choices": ["砂糖", "塩", "酢", "石", "水"], "label": 0},
    {"id": "1", "question": "飛ぶのは?", "choices": ["犬", "鳥", "魚", "岩", "木"], "label": 1},
    {"id": "2", "question": "白いのは?", "choices": ["炭", "血", "雪", "空", "草"], "label": 2},
]
JNLI = [
    {"id": "0", "premise": "犬が走る。", "hypothesis": "動物が走る。", "label": 0},
    {"id": "1", "premise": "猫が寝る。", "hypothesis": "猫が走る。", "label": 1},
    {"id": "2", "premise": "鳥が鳴く。", "hypothesis": "空は青い。", "label": 2},
]
MARC = [
    {"id": "0", "text": "最高です。", "label": 0},
    {"id": "1", "text": "最悪です。", "label": 1},
    {"id": "2", "text": "満足です。", "label": 0},
]
JAQKET = [
    {
        "id": "q0",
        "question": "赤い果物は?",
        "answers": ["りんご"],
        "ctxs": [
            {"title": "梨", "text": "梨は白い。", "has_answer": False},
            {"title": "林檎", "text": "りんごは赤い。", "has_answer": True},
        ],
    },
    {
        "id": "q1",
        "question": "黄色い果物は?",
        "answers": ["バナナ"],
        "ctxs": [
            {"title": "桃", "text": "桃は甘い。", "has_answer": False},
            {"title": "甘蕉", "text": "バナナは黄色。", "has_answer": True},
        ],
    },
    {
        "id": "q2",
        "question": "紫の果物は?",
        "answers": ["ぶどう"],
        "ctxs": [
            {"title": "葡萄", "text": "ぶどうは紫。", "has_answer": True},
            {"title": "柿", "text": "柿は秋。", "has_answer": False},
        ],
    },
]
XLSUM = [
    {"id": "0", "text": "記事A。", "summary": "要約A。"},
    {"id": "1", "text": "記事B。", "summary": "要約B。"},
    {"id": "2", "text": "記事C。", "summary": "要約C。"},
]
MGSM = [
    {
        "id": "0",
        "question": "問題：1足す1は?",
        "answer": "ステップごとの答え：1+1=2。答えは2です。",
        "answer_number": 2,
    },
    {
        "id": "1",
        "question": "問題：2足す2は?",
        "answer": "ステップごとの答え：2+2=4。答えは4です。",
        "answer_number": 4,
    },
    {"id": "2", "question": "問題：3足す3は?", "answer": "", "answer_number": 6},
]
DATA = {
    "jsquad": SQUAD,
    "jcommonsenseqa": JCQA,
    "jnli": JNLI,
    "marc_ja": MARC,
    "jaqket_v2": JAQKET,
    "xlsum_ja": XLSUM,
    "mgsm": MGSM,
}


def alp(instr, inp):
    return f"### 指示:\n{instr}\n\n### 入力:\n{inp}\n\n### 応答:\n"


SQ_I = "与えられた文脈から、質問に対する答えを抜き出してください。"
JC_I = "与えられた選択肢の中から、最適な答えを選んでください。"
MARC_I = "製品レビューを、ポジティブまたはネガティブの感情クラスのいずれかに分類してください。"
JNLI_I = "与えられた前提と仮説の関係を回答してください。"


def jcqa_dash(choices, nl):
    return nl.join(f"- {c}" for c in choices)


GOLDEN = {
    "jsquad-1.1-0.2": "質問に対する回答を文章から一言で抽出してください。回答は名詞で答えてください。\n\n"
    "文章:京都では抹茶が有名です。\n質問:京都で有名なのは?\n回答:抹茶\n\n"
    "文章:札幌では雪祭りがあります。\n質問:札幌の祭りは?\n回答:雪祭り\n\n"
    "文章:東京には塔があります。\n質問:東京に何がある?\n回答:",
    "jsquad-1.1-0.3": ALPACA
    + alp(SQ_I, "文脈：京都では抹茶が有名です。\n質問：京都で有名なのは?")
    + "抹茶\n\n"
    + alp(SQ_I, "文脈：札幌では雪祭りがあります。\n質問：札幌の祭りは?")
    + "雪祭り\n\n"
    + alp(SQ_I, "文脈：東京には塔があります。\n質問：東京に何がある?"),
    "jsquad-1.2-0.3": ALPACA
    + alp(SQ_I, "文脈：京都\n京都では抹茶が有名です。\n質問：京都で有名なのは?")
    + "抹茶\n\n"
    + alp(SQ_I, "文脈：札幌\n札幌では雪祭りがあります。\n質問：札幌の祭りは?")
    + "雪祭り\n\n"
    + alp(SQ_I, "文脈：東京\n東京には塔があります。\n質問：東京に何がある?"),
    "jsquad-1.1-0.4": "ユーザー: 与えられた文脈から、質問に対する答えを抜き出してください。<NL>システム: 分かりました。<NL>"
    "ユーザー: 文脈：京都では抹茶が有名です。<NL>質問：京都で有名なのは?<NL>システム: 抹茶<NL>"
    "ユーザー: 文脈：札幌では雪祭りがあります。<NL>質問：札幌の祭りは?<NL>システム: 雪祭り<NL>"
    "ユーザー: 文脈：東京には塔があります。<NL>質問：東京に何がある?<NL>システム: ",
    "jsquad-1.1-0.5": "ユーザー: 与えられた文脈から、質問に対する答えを抜き出してください。\nシステム: 分かりました。\n"
    "ユーザー: 文脈：京都では抹茶が有名です。\n質問：京都で有名なのは?\nシステム: 抹茶\n"
    "ユーザー: 文脈：札幌では雪祭りがあります。\n質問：札幌の祭りは?\nシステム: 雪祭り\n"
    "ユーザー: 文脈：東京には塔があります。\n質問：東京に何がある?\nシステム: ",
    "jcommonsenseqa-1.1-0.2": "質問と回答の選択肢を入力として受け取り、選択肢から回答を選択してください。なお、回答は選択肢の番号(例:0)でするものとします。 \n\n"
    "質問:甘いのは?\n選択肢:0.砂糖,1.塩,2.酢,3.石,4.水\n回答:0\n\n"
    "質問:飛ぶのは?\n選択肢:0.犬,1.鳥,2.魚,3.岩,4.木\n回答:1\n\n"
    "質問:白いのは?\n選択肢:0.炭,1.血,2.雪,3.空,4.草\n回答:",
    "jcommonsenseqa-1.1-0.3": ALPACA
    + alp(JC_I + "出力は以下から選択してください：\n- 砂糖\n- 塩\n- 酢\n- 石\n- 水", "甘いのは?")
    + "砂糖\n\n"
    + alp(JC_I + "出力は以下から選択してください：\n- 犬\n- 鳥\n- 魚\n- 岩\n- 木", "飛ぶのは?")
    + "鳥\n\n"
    + alp(JC_I + "出力は以下から選択してください：\n- 炭\n- 血\n- 雪\n- 空\n- 草", "白いのは?"),
    "jcommonsenseqa-1.1-0.4": "ユーザー: 与えられた選択肢の中から、最適な答えを選んでください。<NL>システム: 分かりました。<NL>"
    "ユーザー: 質問：甘いのは?<NL>選択肢：<NL>- 砂糖<NL>- 塩<NL>- 酢<NL>- 石<NL>- 水<NL>システム: 砂糖<NL>"
    "ユーザー: 質問：飛ぶのは?<NL>選択肢：<NL>- 犬<NL>- 鳥<NL>- 魚<NL>- 岩<NL>- 木<NL>システム: 鳥<NL>"
    "ユーザー: 質問：白いのは?<NL>選択肢：<NL>- 炭<NL>- 血<NL>- 雪<NL>- 空<NL>- 草<NL>システム: ",
    "jcommonsenseqa-1.1-0.5": "ユーザー: 与えられた選択肢の中から、最適な答えを選んでください。\nシステム: 分かりました。\n"
    "ユーザー: 質問：甘いのは?\n選択肢：\n- 砂糖\n- 塩\n- 酢\n- 石\n- 水\nシステム: 砂糖\n"
    "ユーザー: 質問：飛ぶのは?\n選択肢：\n- 犬\n- 鳥\n- 魚\n- 岩\n- 木\nシステム: 鳥\n"
    "ユーザー: 質問：白いのは?\n選択肢：\n- 炭\n- 血\n- 雪\n- 空\n- 草\nシステム: ",
    "jnli-1.3-0.2": "前提と仮説の関係を含意、矛盾、中立の中から回答してください。\n\n制約:\n"
    "- 前提から仮説が、論理的知識や常識的知識を用いて導出可能である場合は含意と出力\n"
    "- 前提と仮説が両立しえない場合は矛盾と出力\n- そのいずれでもない場合は中立と出力\n\n"
    "前提:犬が走る。\n仮説:動物が走る。\n関係:含意\n\n前提:猫が寝る。\n仮説:猫が走る。\n関係:矛盾\n\n"
    "前提:鳥が鳴く。\n仮説:空は青い。\n関係:",
    "jnli-1.3-0.3": ALPACA
    + alp(
        JNLI_I + "\n\n出力は以下から選択してください：\n含意\n矛盾\n中立",
        "前提：犬が走る。\n仮説：動物が走る。",
    )
    + "含意\n\n"
    + alp(
        JNLI_I + "\n\n出力は以下から選択してください：\n含意\n矛盾\n中立",
        "前提：猫が寝る。\n仮説：猫が走る。",
    )
    + "矛盾\n\n"
    + alp(
        JNLI_I + "\n\n出力は以下から選択してください：\n含意\n矛盾\n中立",
        "前提：鳥が鳴く。\n仮説：空は青い。",
    ),
    "jnli-1.1-0.3": ALPACA
    + alp(
        JNLI_I + "\n\n出力は以下から選択してください：\nentailment\ncontradiction\nneutral",
        "前提：犬が走る。\n仮説：動物が走る。",
    )
    + "entailment\n\n"
    + alp(
        JNLI_I + "\n\n出力は以下から選択してください：\nentailment\ncontradiction\nneutral",
        "前提：猫が寝る。\n仮説：猫が走る。",
    )
    + "contradiction\n\n"
    + alp(
        JNLI_I + "\n\n出力は以下から選択してください：\nentailment\ncontradiction\nneutral",
        "前提：鳥が鳴く。\n仮説：空は青い。",
    ),
    "jnli-1.3-0.4": "ユーザー: 与えられた前提と仮説の関係を回答してください。出力は以下から選択してください：<NL>含意<NL>矛盾<NL>中立<NL>システム: 分かりました。<NL>"
    "ユーザー: 前提：犬が走る。<NL>仮説：動物が走る。<NL>システム: 含意<NL>"
    "ユーザー: 前提：猫が寝る。<NL>仮説：猫が走る。<NL>システム: 矛盾<NL>"
    "ユーザー: 前提：鳥が鳴く。<NL>仮説：空は青い。<NL>システム: ",
    "jnli-1.3-0.5": "ユーザー: 与えられた前提と仮説の関係を回答してください。出力は以下から選択してください：\n含意\n矛盾\n中立\nシステム: 分かりました。\n"
    "ユーザー: 前提：犬が走る。\n仮説：動物が走る。\nシステム: 含意\n"
    "ユーザー: 前提：猫が寝る。\n仮説：猫が走る。\nシステム: 矛盾\n"
    "ユーザー: 前提：鳥が鳴く。\n仮説：空は青い。\nシステム: ",
    "marc_ja-1.1-0.2": "製品レビューをnegativeかpositiveのいずれかのセンチメントに分類してください。出力は小文字化してください。 \n\n"
    "製品レビュー:最高です。\nセンチメント:positive\n\n製品レビュー:最悪です。\nセンチメント:negative\n\n"
    "製品レビュー:満足です。\nセンチメント:",
    "marc_ja-1.1-0.3": ALPACA
    + alp("以下の" + MARC_I, "最高です。")
    + "ポジティブ\n\n"
    + alp("以下の" + MARC_I, "最悪です。")
    + "ネガティブ\n\n"
    + alp("以下の" + MARC_I, "満足です。"),
    "marc_ja-1.1-0.4": f"ユーザー: 与えられた{MARC_I}<NL>システム: 分かりました。<NL>"
    "ユーザー: 最高です。<NL>システム: ポジティブ<NL>ユーザー: 最悪です。<NL>システム: ネガティブ<NL>"
    "ユーザー: 満足です。<NL>システム: ",
    "marc_ja-1.1-0.5": f"ユーザー: 与えられた{MARC_I}\nシステム: 分かりました。\n"
    "ユーザー: 最高です。\nシステム: ポジティブ\nユーザー: 最悪です。\nシステム: ネガティブ\n"
    "ユーザー: 満足です。\nシステム: ",
    # examples show only their answering context (every kept question has one); the query all (top 5)
    "jaqket_v2-0.2-0.3": ALPACA
    + alp(SQ_I, "文脈：りんごは赤い。\n質問：赤い果物は?")
    + "りんご\n\n"
    + alp(SQ_I, "文脈：バナナは黄色。\n質問：黄色い果物は?")
    + "バナナ\n\n"
    + alp(SQ_I, "文脈：ぶどうは紫。\n柿は秋。\n質問：紫の果物は?"),
    "xlsum_ja-1.0-0.3": ALPACA
    + alp("与えられたニュース記事を要約してください。", "ニュース記事:記事A。")
    + "要約A。\n\n"
    + alp("与えられたニュース記事を要約してください。", "ニュース記事:記事B。")
    + "要約B。\n\n"
    + alp("与えられたニュース記事を要約してください。", "ニュース記事:記事C。"),
    "mgsm-1.0-0.3": ALPACA
    + alp("与えられた問題に対して、ステップごとに答えを導き出してください。", "1足す1は?")
    + "1+1=2。答えは2です。\n\n"
    + alp("与えられた問題に対して、ステップごとに答えを導き出してください。", "2足す2は?")
    + "2+2=4。答えは4です。\n\n"
    + alp("与えられた問題に対して、ステップごとに答えを導き出してください。", "3足す3は?"),
    "jsquad-1.1-0.6": "<s>[INST] <<SYS>>\nあなたは役立つアシスタントです。\n<</SYS>>\n\n"
    "与えられた文脈から、質問に対する答えを抜き出してください。\n\n文脈：京都では抹茶が有名です。\n質問：京都で有名なのは? [/INST] 抹茶 </s><s>[INST] "
    "与えられた文脈から、質問に対する答えを抜き出してください。\n\n文脈：札幌では雪祭りがあります。\n質問：札幌の祭りは? [/INST] 雪祭り </s><s>[INST] "
    "与えられた文脈から、質問に対する答えを抜き出してください。\n\n文脈：東京には塔があります。\n質問：東京に何がある? [/INST] ",
    "jcommonsenseqa-1.1-0.6": "<s>[INST] <<SYS>>\nあなたは役立つアシスタントです。\n<</SYS>>\n\n"
    "与えられた5つの選択肢の中から、最適な答えを選んでください。出力は以下から選択してください：\n- 砂糖\n- 塩\n- 酢\n- 石\n- 水\n\n質問：甘いのは? [/INST] 砂糖 </s><s>[INST] "
    "与えられた5つの選択肢の中から、最適な答えを選んでください。出力は以下から選択してください：\n- 犬\n- 鳥\n- 魚\n- 岩\n- 木\n\n質問：飛ぶのは? [/INST] 鳥 </s><s>[INST] "
    "与えられた5つの選択肢の中から、最適な答えを選んでください。出力は以下から選択してください：\n- 炭\n- 血\n- 雪\n- 空\n- 草\n\n質問：白いのは? [/INST] ",
    "jnli-1.3-0.6": "<s>[INST] <<SYS>>\nあなたは役立つアシスタントです。\n<</SYS>>\n\n"
    "与えられた前提と仮説の関係を回答してください。\n\n出力は以下から選択してください：\n含意\n矛盾\n中立\n\n前提：犬が走る。\n仮説：動物が走る。 [/INST] 含意 </s><s>[INST] "
    "与えられた前提と仮説の関係を回答してください。\n\n出力は以下から選択してください：\n含意\n矛盾\n中立\n\n前提：猫が寝る。\n仮説：猫が走る。 [/INST] 矛盾 </s><s>[INST] "
    "与えられた前提と仮説の関係を回答してください。\n\n出力は以下から選択してください：\n含意\n矛盾\n中立\n\n前提：鳥が鳴く。\n仮説：空は青い。 [/INST] ",
    "marc_ja-1.1-0.6": "<s>[INST] <<SYS>>\nあなたは役立つアシスタントです。\n<</SYS>>\n\n"
    "以下の製品レビューを、ポジティブまたはネガティブの感情クラスのいずれかに分類してください。\n\n最高です。 [/INST] ポジティブ </s><s>[INST] "
    "以下の製品レビューを、ポジティブまたはネガティブの感情クラスのいずれかに分類してください。\n\n最悪です。 [/INST] ネガティブ </s><s>[INST] "
    "以下の製品レビューを、ポジティブまたはネガティブの感情クラスのいずれかに分類してください。\n\n満足です。 [/INST] ",
}


def manager() -> TaskManager:
    return TaskManager(include_path=str(TASKS_DIR), include_defaults=False)


def build_task(tmp_path, name: str, family: str, rows: list[dict], eval_split: str = "validation"):
    for split, part in (("train", rows[:2]), (eval_split, rows[2:])):
        (tmp_path / family).mkdir(parents=True, exist_ok=True)
        (tmp_path / family / f"{split}.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part), encoding="utf-8"
        )
    cfg = task_spec(
        {"task": family, "version": name.split("-")[1], "template": name.split("-", 2)[2]}, tmp_path
    )
    return manager().load([cfg])["tasks"][name]


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_prompt(tmp_path, name):
    family = name.split("-")[0]
    split = "test" if family in ("xlsum_ja", "mgsm") else "validation"
    task = build_task(tmp_path, name, family, DATA[family], split)
    # fixed few-shot examples in file order (lm-eval's first_n sampler), fixed query document
    task.sampler = FirstNSampler(list(task.fewshot_docs()))
    doc = task.eval_docs[0]
    assert task.fewshot_context(doc, 2) == GOLDEN[name]


def test_every_family_has_a_golden_prompt():
    families = {n.split("-")[0] for n in GOLDEN} | {"xwinograd_ja"}
    assert families == {
        "jsquad",
        "jcommonsenseqa",
        "jnli",
        "marc_ja",
        "jaqket_v2",
        "xlsum_ja",
        "xwinograd_ja",
        "mgsm",
    }


def test_xwinograd_scores_both_sentences_with_empty_context(tmp_path):
    rows = [{"id": "0", "sentence1": "猫は寝る。", "sentence2": "猫は飛ぶ。", "answer": 1}]
    (tmp_path / "xwinograd_ja").mkdir()
    (tmp_path / "xwinograd_ja" / "test.jsonl").write_text(
        json.dumps(rows[0], ensure_ascii=False) + "\n"
    )
    task = manager().load([task_spec({"task": "xwinograd_ja"}, tmp_path)])["tasks"]["xwinograd_ja"]
    doc = task.eval_docs[0]
    ctx = task.fewshot_context(doc, 0)
    reqs = task.construct_requests(doc, ctx)
    assert [r.arguments for r in reqs] == [("", "猫は寝る。"), ("", "猫は飛ぶ。")]
