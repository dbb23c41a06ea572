"""The jp-stable prompt templates: one table, (family, version, template) -> TaskTemplate.

Every string is the Stability-AI lm-evaluation-harness (branch jp-stable) prompt, character for
character. jp-stable assembles a prompt as DESCRIPTION + each few-shot example (text + target)
followed by FEWSHOT_SEP + the query; lm-eval 0.4 does the same with `description`,
`target_delimiter: ""` and `fewshot_delimiter: FEWSHOT_SEP`. Task YAMLs are generated from this
table (`jaflow.evaluate.jglue.yamls`); nothing here is written out per combination by hand.

Documents are the normalised rows of `jaflow.evaluate.jglue.data` (one schema per family).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jaflow.errors import ConfigError

Doc = dict[str, Any]

ALPACA_DESC = "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。\n\n"
LLAMA2_SYSTEM = (
    "あなたは役立つアシスタントです。"  # jp-stable's default SYSTEM_PROMPT since 2023-11-09
)
# ... and before (Llama 2's own default), e.g. at c10a2b8, the last commit with jnli-1.1
LLAMA2_SYSTEM_EN = (
    "You are a helpful, respectful and honest assistant. Always answer as helpfully as possible, while being safe.  "
    "Your answers should not include any harmful, unethical, racist, sexist, toxic, dangerous, or illegal content. "
    "Please ensure that your responses are socially unbiased and positive in nature.\n\nIf a question does not make "
    "any sense, or is not factually coherent, explain why instead of answering something not correct. If you don't "
    "know the answer to a question, please don't share false information."
)
SYSTEM_PROMPTS = {"ja": LLAMA2_SYSTEM, "en": LLAMA2_SYSTEM_EN}
JA_SYSTEM_PROMPT_SINCE = "2023-11-09"


def llama2_desc(system: str) -> str:
    return f"<s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n"


LLAMA2_DESC = llama2_desc(LLAMA2_SYSTEM)
LLAMA2_SEP = " </s><s>[INST] "
JNLI_JA = ["含意", "矛盾", "中立"]
JNLI_EN = ["entailment", "contradiction", "neutral"]


def alpaca(instruction: str, text: str) -> str:
    return f"### 指示:\n{instruction}\n\n### 入力:\n{text}\n\n### 応答:\n"


def rinna_desc(instruction: str, nl: str) -> str:
    return f"ユーザー: {instruction}{nl}システム: 分かりました。{nl}"


def rinna(text: str, nl: str) -> str:
    return f"ユーザー: {text}{nl}システム: "


@dataclass(frozen=True)
class TaskTemplate:
    """One jp-stable task: `{family}-{version}-{template}` (xwinograd_ja has no versions)."""

    family: str
    version: str | None
    template: str | None
    description: str
    fewshot_sep: str
    text: Callable[[Doc], str]
    target: Callable[[Doc], str]  # the few-shot example's answer
    kind: str  # "mc" | "gen" | "winograd"
    choices: tuple[str, ...] | None = None
    stop: tuple[str, ...] = ("\n",)
    fewshot_text: Callable[[Doc], str] | None = (
        None  # jaqket: examples show only the answering context
    )
    stratified: bool = False  # few-shot balanced by label (jnli 1.3)
    balanced_metrics: bool = False  # balanced_acc, mcc, macro_f1 (jnli 1.3, marc_ja)
    eval_split: str = "validation"
    max_gen: str = "answer"  # "answer": longest gold answer in tokens; "summary+10"; "256"
    stop_eos_first: bool = False  # mgsm: stop strings are [the model's EOS token, "\n"]
    metrics: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        return "-".join(p for p in (self.family, self.version, self.template) if p)

    def choice_list(self, doc: Doc) -> list[str]:
        return list(self.choices) if self.choices is not None else list(doc["choices"])


def _ctx(doc: Doc) -> str:
    return doc["context"].split("[SEP]")[-1].strip()


def _jsquad(version: str, template: str) -> TaskTemplate:
    titled = version == "1.2"
    instr = "与えられた文脈から、質問に対する答えを抜き出してください。"
    if template == "0.2":
        desc = (
            "質問に対する回答を題名と文章から一言で抽出してください。回答は名詞で答えてください。\n\n"
            if titled
            else "質問に対する回答を文章から一言で抽出してください。回答は名詞で答えてください。\n\n"
        )

        def text(d):
            head = f"題名:{d['title']}\n" if titled else ""
            return f"{head}文章:{_ctx(d)}\n質問:{d['question']}\n回答:"

        sep, stop = "\n\n", "\n"
    elif template == "0.3":
        desc, sep, stop = ALPACA_DESC, "\n\n", "\n"

        def text(d):
            head = f"{d['title']}\n" if titled else ""
            return alpaca(instr, f"文脈：{head}{_ctx(d)}\n質問：{d['question']}")
    elif template == "0.6":
        desc, sep, stop = LLAMA2_DESC, LLAMA2_SEP, "\n"

        def text(d):
            head = f"{d['title']}\n" if titled else ""
            return f"{instr}\n\n文脈：{head}{_ctx(d)}\n質問：{d['question']} [/INST] "
    else:
        nl = "<NL>" if template == "0.4" else "\n"
        desc, sep, stop = rinna_desc(instr, nl), nl, nl

        def text(d, nl=nl):
            head = f"{d['title']}{nl}" if titled else ""
            return rinna(f"文脈：{head}{_ctx(d)}{nl}質問：{d['question']}", nl)

    return TaskTemplate(
        "jsquad",
        version,
        template,
        desc,
        sep,
        text,
        lambda d: d["answers"][0],
        "gen",
        stop=(stop,),
        metrics=("exact_match", "f1"),
    )


def _jcqa(template: str) -> TaskTemplate:
    instr = "与えられた選択肢の中から、最適な答えを選んでください。"
    target = None
    if template == "0.2":
        desc = "質問と回答の選択肢を入力として受け取り、選択肢から回答を選択してください。なお、回答は選択肢の番号(例:0)でするものとします。 \n\n"

        def text(d):
            choices = ",".join(f"{i}.{c}" for i, c in enumerate(d["choices"]))
            return f"質問:{d['question']}\n選択肢:{choices}\n回答:"

        def target(d):  # the examples answer with the choice index; scoring uses the choice text
            return str(d["label"])

        sep = "\n\n"
    elif template == "0.2.1":
        desc, sep = "与えられた選択肢の中から、最適な答えを選んでください。 \n\n", "\n\n"

        def text(d):
            choices = "\n".join(f"- {c}" for c in d["choices"])
            return f"質問：{d['question']}\n選択肢：\n{choices}\n回答："
    elif template == "0.3":
        desc, sep = ALPACA_DESC, "\n\n"

        def text(d):
            choices = "\n".join(f"- {c}" for c in d["choices"])
            return alpaca(f"{instr}出力は以下から選択してください：\n{choices}", d["question"])
    elif template == "0.6":
        desc, sep = LLAMA2_DESC, LLAMA2_SEP

        def text(d):
            choices = "\n".join(f"- {c}" for c in d["choices"])
            return (
                f"与えられた5つの選択肢の中から、最適な答えを選んでください。出力は以下から選択してください：\n{choices}"
                f"\n\n質問：{d['question']} [/INST] "
            )
    else:
        nl = "<NL>" if template == "0.4" else "\n"
        desc, sep = rinna_desc(instr, nl), nl

        def text(d, nl=nl):
            choices = nl.join(f"- {c}" for c in d["choices"])
            return rinna(f"質問：{d['question']}{nl}選択肢：{nl}{choices}", nl)

    return TaskTemplate(
        "jcommonsenseqa",
        "1.1",
        template,
        desc,
        sep,
        text,
        target or (lambda d: d["choices"][d["label"]]),
        "mc",
        metrics=("acc", "acc_norm"),
    )


def _jnli(version: str, template: str) -> TaskTemplate:
    labels = JNLI_EN if version == "1.1" else JNLI_JA
    e, c, n = labels
    if template == "0.2":
        desc = (
            f"前提と仮説の関係を{e}、{c}、{n}の中から回答してください。\n\n"
            "制約:\n"
            f"- 前提から仮説が、論理的知識や常識的知識を用いて導出可能である場合は{e}と出力\n"
            f"- 前提と仮説が両立しえない場合は{c}と出力\n"
            f"- そのいずれでもない場合は{n}と出力\n\n"
        )
        sep = "\n\n"

        def text(d):
            return f"前提:{d['premise']}\n仮説:{d['hypothesis']}\n関係:"
    elif template == "0.3":
        desc, sep = ALPACA_DESC, "\n\n"
        instr = (
            "与えられた前提と仮説の関係を回答してください。\n\n出力は以下から選択してください：\n"
            + "\n".join(labels)
        )

        def text(d):
            return alpaca(instr, f"前提：{d['premise']}\n仮説：{d['hypothesis']}")
    elif template == "0.6":
        # jnli-1.1 existed only before the Japanese system prompt (2023-11-09)
        desc, sep = llama2_desc(LLAMA2_SYSTEM_EN if version == "1.1" else LLAMA2_SYSTEM), LLAMA2_SEP
        instr = (
            "与えられた前提と仮説の関係を回答してください。\n\n出力は以下から選択してください：\n"
            + "\n".join(labels)
        )

        def text(d):
            return f"{instr}\n\n前提：{d['premise']}\n仮説：{d['hypothesis']} [/INST] "
    else:
        nl = "<NL>" if template == "0.4" else "\n"
        sep = nl
        desc = rinna_desc(
            "与えられた前提と仮説の関係を回答してください。出力は以下から選択してください："
            + nl
            + nl.join(labels),
            nl,
        )

        def text(d, nl=nl):
            return rinna(f"前提：{d['premise']}{nl}仮説：{d['hypothesis']}", nl)

    # balanced metrics for both (jnli-1.1 as c10a2b8 reports it); label-stratified few-shot only in 1.3
    return TaskTemplate(
        "jnli",
        version,
        template,
        desc,
        sep,
        text,
        lambda d: labels[d["label"]],
        "mc",
        choices=tuple(labels),
        stratified=version == "1.3",
        balanced_metrics=True,
        metrics=("acc", "acc_norm", "balanced_acc", "mcc", "macro_f1"),
    )


def _marc(template: str) -> TaskTemplate:
    labels = ("positive", "negative") if template == "0.2" else ("ポジティブ", "ネガティブ")
    if template == "0.2":
        desc = "製品レビューをnegativeかpositiveのいずれかのセンチメントに分類してください。出力は小文字化してください。 \n\n"
        sep = "\n\n"

        def text(d):
            return f"製品レビュー:{d['text']}\nセンチメント:"
    elif template == "0.3":
        desc, sep = ALPACA_DESC, "\n\n"

        def text(d):
            return alpaca(
                "以下の製品レビューを、ポジティブまたはネガティブの感情クラスのいずれかに分類してください。",
                d["text"],
            )
    elif template == "0.6":
        desc, sep = LLAMA2_DESC, LLAMA2_SEP

        def text(d):
            return f"以下の製品レビューを、ポジティブまたはネガティブの感情クラスのいずれかに分類してください。\n\n{d['text']} [/INST] "
    else:
        nl = "<NL>" if template == "0.4" else "\n"
        desc = rinna_desc(
            "与えられた製品レビューを、ポジティブまたはネガティブの感情クラスのいずれかに分類してください。",
            nl,
        )
        sep = nl

        def text(d, nl=nl):
            return rinna(d["text"], nl)

    return TaskTemplate(
        "marc_ja",
        "1.1",
        template,
        desc,
        sep,
        text,
        lambda d: labels[d["label"]],
        "mc",
        choices=labels,
        balanced_metrics=True,
        metrics=("acc", "acc_norm", "balanced_acc", "mcc", "macro_f1"),
    )


def _jaqket(template: str) -> TaskTemplate:
    """JAQKET v2 (jp-stable version 0.2: the top 5 contexts). The query shows every context, a
    few-shot example only its first answering one (jp-stable's doc_to_answering_text, as at
    2f1583c and c10a2b8)."""
    instr = "与えられた文脈から、質問に対する答えを抜き出してください。"
    sep, fewshot_sep = "\n", "\n\n"
    if template == "0.1":
        desc = "[題名]と[問題]から[質問]に対する[答え]を抜き出しなさい\n\n"

        def render(ctxs, q):
            cands = "\n".join(f"[題名]:{c['title']}\n[問題]:{c['text']}" for c in ctxs)
            return f"{cands}\n[質問]:{q}\n[答え]:"
    elif template == "0.2":
        desc = "質問に対する回答を文章から一言で抽出してください。回答は名詞で答えてください。\n\n"

        def render(ctxs, q):
            return "文章:" + "\n".join(c["text"] for c in ctxs) + f"\n質問:{q}\n回答:"
    elif template == "0.3":
        desc = ALPACA_DESC

        def render(ctxs, q):
            return alpaca(instr, "文脈：" + "\n".join(c["text"] for c in ctxs) + f"\n質問：{q}")
    elif template == "0.6":
        desc, fewshot_sep = LLAMA2_DESC, LLAMA2_SEP

        def render(ctxs, q):
            return (
                f"{instr}\n\n文脈：" + "\n".join(c["text"] for c in ctxs) + f"\n質問：{q} [/INST] "
            )
    else:
        nl = "<NL>" if template == "0.4" else "\n"
        desc, sep, fewshot_sep = rinna_desc(instr, nl), nl, nl

        def render(ctxs, q, nl=nl):
            return rinna("文脈：" + nl.join(c["text"] for c in ctxs) + f"{nl}質問：{q}", nl)

    def text(d):
        return render(d["ctxs"][:5], d["question"])

    def fewshot_text(d):
        # the data loader keeps only questions one of whose top 5 contexts answers (kumapo's loader)
        return render([next(c for c in d["ctxs"] if c["has_answer"])], d["question"])

    return TaskTemplate(
        "jaqket_v2",
        "0.2",
        template,
        desc,
        fewshot_sep,
        text,
        lambda d: d["answers"][0],
        "gen",
        stop=(sep,),
        fewshot_text=fewshot_text,
        metrics=("exact_match", "f1"),
    )


def _xlsum(template: str) -> TaskTemplate:
    def text(d):
        return alpaca("与えられたニュース記事を要約してください。", f"ニュース記事:{d['text']}")

    return TaskTemplate(
        "xlsum_ja",
        "1.0",
        template,
        ALPACA_DESC,
        "\n\n",
        text,
        lambda d: d["summary"],
        "gen",
        eval_split="test",
        max_gen="summary+10",
        metrics=("rouge2",),
    )


def _mgsm(template: str) -> TaskTemplate:
    def text(d):
        return alpaca(
            "与えられた問題に対して、ステップごとに答えを導き出してください。",
            d["question"].replace("問題：", ""),
        )

    return TaskTemplate(
        "mgsm",
        "1.0",
        template,
        ALPACA_DESC,
        "\n\n",
        text,
        lambda d: d["answer"].replace("ステップごとの答え：", ""),
        "gen",
        eval_split="test",
        max_gen="256",
        stop_eos_first=True,
        metrics=("acc",),
    )


def _xwinograd() -> TaskTemplate:
    # Scored as log p(sentence1) vs log p(sentence2) with an empty context (the EOT token).
    return TaskTemplate(
        "xwinograd_ja",
        None,
        None,
        "",
        "\n\n",
        lambda d: "",
        lambda d: d[f"sentence{d['answer']}"],
        "winograd",
        eval_split="test",
        metrics=("acc",),
    )


def _build() -> dict[str, TaskTemplate]:
    table = [_jsquad(v, t) for v in ("1.1", "1.2") for t in ("0.2", "0.3", "0.4", "0.5", "0.6")]
    table += [_jcqa(t) for t in ("0.2", "0.2.1", "0.3", "0.4", "0.5", "0.6")]
    table += [_jnli("1.1", t) for t in ("0.2", "0.3", "0.4", "0.5", "0.6")]  # as at c10a2b8
    table += [_jnli("1.3", t) for t in ("0.2", "0.3", "0.4", "0.5", "0.6")]
    table += [_marc(t) for t in ("0.2", "0.3", "0.4", "0.5", "0.6")]
    table += [_jaqket(t) for t in ("0.1", "0.2", "0.3", "0.4", "0.5", "0.6")]
    table += [_xlsum("0.3"), _mgsm("0.3"), _xwinograd()]
    return {t.name: t for t in table}


TEMPLATES: dict[str, TaskTemplate] = _build()
FAMILIES = (
    "jsquad",
    "jcommonsenseqa",
    "jnli",
    "marc_ja",
    "jaqket_v2",
    "xlsum_ja",
    "xwinograd_ja",
    "mgsm",
)
DEFAULT_VERSIONS = {
    "jsquad": "1.1",
    "jcommonsenseqa": "1.1",
    "jnli": "1.3",
    "marc_ja": "1.1",
    "jaqket_v2": "0.2",
    "xlsum_ja": "1.0",
    "xwinograd_ja": None,
    "mgsm": "1.0",
}


def task_name(family: str, version: str | None = None, template: str | None = None) -> str:
    """`jsquad-1.1-0.3` from its parts (family defaults fill a missing version)."""
    if family == "xwinograd_ja":
        return family
    version = version or DEFAULT_VERSIONS[family]
    return f"{family}-{version}-{template}"


def get_template(name: str) -> TaskTemplate:
    if name not in TEMPLATES:
        raise ConfigError(f"jglue: unknown jp-stable task '{name}' (known: {sorted(TEMPLATES)})")
    return TEMPLATES[name]
