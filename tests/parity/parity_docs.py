"""The documents of the JGLUE parity goldens, in the upstream JGLUE file schemas.

Real JGLUE v1.1 documents (`../shared/data/jglue-v1.1`, never copied into the repository) chosen
by position, plus hand-written tricky ones (`tricky_docs.json`: newlines, full/half-width text,
`[SEP]`, emoji, runs of spaces, `<NL>` and `</s>` typed as text). Both the jp-stable driver
(`make_goldens.py`, which converts them to the shunk031/JGLUE schema jp-stable reads) and the CI
test (which writes them as upstream files and reads them through jaflow's loader) build them here.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRICKY = HERE / "tricky_docs.json"

# family -> (split of the upstream file, first row, row count) for the eval docs and the few-shot pool.
# JSQuAD and JNLI have no train file in the shared data: their pools come from later validation rows.
REAL = {
    "jcommonsenseqa": {"validation": ("valid", 0, 6), "train": ("train", 0, 14)},
    "jnli": {"validation": ("valid", 0, 6), "train": ("valid", 300, 14)},
    "jsquad": {"validation": ("valid", 0, 5), "train": ("valid", 400, 10)},
}
FILES = {
    "jcommonsenseqa": "jcommonsenseqa-v1.1/{}-v1.1.json",
    "jnli": "jnli-v1.1/{}-v1.1.json",
    "jsquad": "jsquad-v1.1/{}-v1.1.json",
}


def _json_lines(path: Path) -> list[dict]:
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def _jsquad_qas(path: Path) -> list[dict]:
    """Flat JSQuAD questions: one dict per qa with its article title and paragraph context."""
    out = []
    for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                out.append({"title": article["title"], "context": para["context"], **qa})
    return out


def load(data_dir: str | Path | None) -> dict[str, dict[str, list[dict]]]:
    """family -> split (train/validation) -> rows (upstream schema; JSQuAD rows flattened).

    Families with real data need `data_dir` (the jglue-v1.1 directory); without it they are left out.
    """
    tricky = json.loads(TRICKY.read_text(encoding="utf-8"))
    docs: dict[str, dict[str, list[dict]]] = {}
    for family, splits in tricky.items():
        docs[family] = {s: list(rows) for s, rows in splits.items()}
    if data_dir is None:
        return {f: d for f, d in docs.items() if f not in REAL}
    for family, splits in REAL.items():
        for split, (src, start, n) in splits.items():
            path = Path(data_dir) / FILES[family].format(src)
            rows = _jsquad_qas(path) if family == "jsquad" else _json_lines(path)
            real = rows[start : start + n]
            docs.setdefault(family, {}).setdefault(split, [])
            docs[family][split] = real + docs[family][split]
    return docs


JAQKET_TOP_K = 5
# jaflow's upstream layout (jaflow.evaluate.jglue.data.SOURCE_FILES) for the non-JGLUE families
OTHER_FILES = {
    "jaqket_v2": {"train": "jaqket_v2/train.jsonl", "validation": "jaqket_v2/valid.jsonl"},
    "xlsum_ja": {"train": "xlsum_ja/train.jsonl", "test": "xlsum_ja/test.jsonl"},
    "xwinograd_ja": {"test": "xwinograd_ja/test.jsonl"},
    "mgsm": {"train": "mgsm/train.jsonl", "test": "mgsm/test.jsonl"},
}


def kumapo_v2(rows: list[dict]) -> list[dict]:
    """JAQKET v2 as kumapo's loader (JAQKET.py, num_contexts=5) yields it: the top 5 contexts, a
    question none of them answers skipped."""
    out = []
    for r in rows:
        ctxs = r["ctxs"][:JAQKET_TOP_K]
        if any(c["has_answer"] for c in ctxs):
            out.append(dict(r, ctxs=ctxs))
    return out


def write_upstream(docs: dict[str, dict[str, list[dict]]], out: str | Path) -> Path:
    """Write `docs` as JGLUE v1.1 release files (jaflow's `jglue.data_dir` layout)."""
    out = Path(out)
    for family, splits in docs.items():
        for split, rows in splits.items():
            if family in OTHER_FILES:
                path = out / OTHER_FILES[family][split]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(
                    "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8",
                )
                continue
            name = {"train": "train", "validation": "valid"}[split]
            path = out / f"{family}-v1.1" / f"{name}-v1.1.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            if family == "jsquad":
                data = [
                    {
                        "title": r["title"],
                        "paragraphs": [
                            {
                                "context": r["context"],
                                "qas": [
                                    {k: v for k, v in r.items() if k not in ("title", "context")}
                                ],
                            }
                        ],
                    }
                    for r in rows
                ]
                path.write_text(
                    json.dumps({"version": "v1.1", "data": data}, ensure_ascii=False),
                    encoding="utf-8",
                )
            else:
                path.write_text(
                    "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8",
                )
    return out


def doc_id(family: str, row: dict) -> str:
    key = {
        "jcommonsenseqa": "q_id",
        "jnli": "sentence_pair_id",
        "jsquad": "id",
        "marc_ja": "review_id",
        "jaqket_v2": "qid",
        "xlsum_ja": "id",
        "xwinograd_ja": "id",
        "mgsm": "id",
    }[family]
    return str(row[key])


def predictions_for(answer: str) -> list[str]:
    """JSQuAD predictions made from a gold answer, exercising jp-stable's normalisation (emoji,
    neologdn, spaces, widths) and its MeCab F1; the goldens store each variant's index."""
    import unicodedata

    wide = {ord(c): ord(c) + 0xFEE0 for c in "0123456789abcdefghijklmnopqrstuvwxyz"}
    return [
        answer,
        f" {answer} ",
        f"{answer}</s>余分",
        f"😀{answer}",
        unicodedata.normalize("NFKC", answer),
        answer.translate(wide),
        answer[: max(1, len(answer) // 2)],
        "",
        "全く別の答え",
        f"{answer}、{answer}",
    ]
