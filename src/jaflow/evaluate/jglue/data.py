"""JGLUE data as local JSON lines that the task YAMLs read (`dataset_path: json`).

Sources, in the upstream schemas (never a loading script):
- a directory laid out as `SOURCE_FILES` (JGLUE v1.1 release files for the JGLUE four; JSON
  lines for JAQKET v2, XL-Sum ja, xwinograd ja and MGSM ja), e.g. `jglue.data_dir`, or the tiny
  world's `results/tiny/jglue/`;
- per-file URLs with a sha256 (`jglue.urls`), downloaded and checked.

`materialize` writes `<out>/<family>/<split>.jsonl` in one normalised schema per family
(`FIELDS`), which the templates read. A row with a missing field fails naming file, line, field.
"""

from __future__ import annotations

import json
import logging
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jaflow.errors import DataError
from jaflow.io import atomic_path, dumps_jsonl, iter_jsonl, sha256_file

log = logging.getLogger(__name__)

# family -> split -> file below the source directory (upstream names).
SOURCE_FILES: dict[str, dict[str, str]] = {
    "jsquad": {"train": "jsquad-v1.1/train-v1.1.json", "validation": "jsquad-v1.1/valid-v1.1.json"},
    "jcommonsenseqa": {"train": "jcommonsenseqa-v1.1/train-v1.1.json",
                       "validation": "jcommonsenseqa-v1.1/valid-v1.1.json"},
    "jnli": {"train": "jnli-v1.1/train-v1.1.json", "validation": "jnli-v1.1/valid-v1.1.json"},
    "marc_ja": {"train": "marc_ja-v1.1/train-v1.1.json", "validation": "marc_ja-v1.1/valid-v1.1.json"},
    "jaqket_v2": {"train": "jaqket_v2/train.jsonl", "validation": "jaqket_v2/valid.jsonl"},
    "xlsum_ja": {"train": "xlsum_ja/train.jsonl", "test": "xlsum_ja/test.jsonl"},
    "xwinograd_ja": {"test": "xwinograd_ja/test.jsonl"},
    "mgsm": {"train": "mgsm/train.jsonl", "test": "mgsm/test.jsonl"},
}

# Normalised fields each family's rows carry after `materialize`.
FIELDS: dict[str, tuple[str, ...]] = {
    "jsquad": ("id", "title", "context", "question", "answers"),
    "jcommonsenseqa": ("id", "question", "choices", "label"),
    "jnli": ("id", "premise", "hypothesis", "label"),
    "marc_ja": ("id", "text", "label"),
    "jaqket_v2": ("id", "question", "answers", "ctxs"),
    "xlsum_ja": ("id", "text", "summary"),
    "xwinograd_ja": ("id", "sentence1", "sentence2", "answer"),
    "mgsm": ("id", "question", "answer", "answer_number"),
}
JNLI_LABELS = ("entailment", "contradiction", "neutral")
MARC_LABELS = ("positive", "negative", "neutral")


def _need(row: dict, key: str, where: str) -> Any:
    if key not in row or row[key] is None:
        raise DataError(f"{where}: missing field '{key}'")
    return row[key]


def _label(value: Any, names: tuple[str, ...], where: str) -> int:
    if isinstance(value, int) and 0 <= value < len(names):
        return value
    if isinstance(value, str) and value in names:
        return names.index(value)
    raise DataError(f"{where}: field 'label' is {value!r}, expected one of {list(names)}")


def _json_lines(path: Path) -> Iterator[tuple[str, dict]]:
    for lineno, row in iter_jsonl(path):
        yield f"{path}:{lineno}", row


def _jsquad_rows(path: Path) -> Iterator[dict]:
    """SQuAD-style JSON (data[].paragraphs[].qas[]); lines are counted to point at a record."""
    text = path.read_text(encoding="utf-8")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None
    for a, article in enumerate(_need(obj, "data", f"{path}:1")):
        where_a = f"{path}: data[{a}]"
        title = _need(article, "title", where_a)
        for p, para in enumerate(_need(article, "paragraphs", where_a)):
            where_p = f"{where_a}.paragraphs[{p}]"
            context = _need(para, "context", where_p)
            for q, qa in enumerate(_need(para, "qas", where_p)):
                where = f"{where_p}.qas[{q}]"
                answers = [_need(x, "text", f"{where}.answers") for x in _need(qa, "answers", where)]
                yield {"id": _need(qa, "id", where), "title": title, "context": context,
                       "question": _need(qa, "question", where), "answers": answers}


def read_source(family: str, path: str | Path) -> list[dict]:
    """Rows of one upstream file, normalised to `FIELDS[family]`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: JGLUE data file not found ({family})")
    if family == "jsquad":
        return list(_jsquad_rows(path))
    rows = []
    for i, (where, r) in enumerate(_json_lines(path)):
        if family == "jcommonsenseqa":
            row = {"id": str(_need(r, "q_id", where)), "question": _need(r, "question", where),
                   "choices": [_need(r, f"choice{k}", where) for k in range(5)],
                   "label": int(_need(r, "label", where))}
        elif family == "jnli":
            row = {"id": str(_need(r, "sentence_pair_id", where)), "premise": _need(r, "sentence1", where),
                   "hypothesis": _need(r, "sentence2", where),
                   "label": _label(_need(r, "label", where), JNLI_LABELS, where)}
        elif family == "marc_ja":
            row = {"id": str(r.get("review_id", i)), "text": _need(r, "sentence", where),
                   "label": _label(_need(r, "label", where), MARC_LABELS, where)}
        elif family == "jaqket_v2":
            ctxs = [{"title": _need(c, "title", where), "text": _need(c, "text", where),
                     "has_answer": bool(_need(c, "has_answer", where))} for c in _need(r, "ctxs", where)]
            row = {"id": str(_need(r, "qid", where)), "question": _need(r, "question", where),
                   "answers": list(_need(r, "answers", where)), "ctxs": ctxs}
        elif family == "xlsum_ja":
            row = {"id": str(r.get("id", i)), "text": _need(r, "text", where), "summary": _need(r, "summary", where)}
        elif family == "xwinograd_ja":
            row = {"id": str(r.get("id", i)), "sentence1": _need(r, "sentence1", where),
                   "sentence2": _need(r, "sentence2", where), "answer": int(_need(r, "answer", where))}
        elif family == "mgsm":
            row = {"id": str(r.get("id", i)), "question": _need(r, "question", where),
                   "answer": r.get("answer") or "", "answer_number": int(_need(r, "answer_number", where))}
        else:
            raise DataError(f"{path}: unknown JGLUE family '{family}'")
        rows.append(row)
    return rows


def download(url: str, sha256: str, dest: Path) -> Path:
    """Fetch `url` to `dest` and check its sha256 (the file is kept only if it matches)."""
    with atomic_path(dest) as tmp:
        with urllib.request.urlopen(url) as r, open(tmp, "wb") as f:  # noqa: S310 (URL from config)
            shutil.copyfileobj(r, f)
        digest = sha256_file(tmp)
        if digest != sha256:
            raise DataError(f"jglue.urls: {url}: sha256 {digest} does not match the configured {sha256}")
    return dest


def materialize(out_dir: str | Path, source_dir: str | Path | None,
                urls: dict[str, dict[str, dict[str, str]]] | None = None,
                family_dirs: dict[str, str | Path] | None = None) -> dict[str, dict[str, int]]:
    """Write `<out_dir>/<family>/<split>.jsonl` for every family found; return row counts.

    `urls` is `{family: {split: {url, sha256}}}`; a URL replaces the file from `source_dir`.
    `family_dirs` is `{family: directory}`: that family's files (upstream names) are read from
    there instead, e.g. the rebuilt MARC-ja (jaflow.data.marc_ja); each must be present.
    """
    urls = urls or {}
    family_dirs = family_dirs or {}
    counts: dict[str, dict[str, int]] = {}
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        for family, files in SOURCE_FILES.items():
            for split, rel in files.items():
                spec = urls.get(family, {}).get(split)
                if spec:
                    path = download(spec["url"], spec["sha256"], tmp / ".downloads" / family / Path(rel).name)
                elif family in family_dirs:
                    path = Path(family_dirs[family]) / Path(rel).name
                    if not path.is_file():
                        raise DataError(f"{path}: {family} file missing from {family_dirs[family]}")
                elif source_dir and (Path(source_dir) / rel).is_file():
                    path = Path(source_dir) / rel
                else:
                    continue
                rows = read_source(family, path)
                (tmp / family).mkdir(exist_ok=True)
                (tmp / family / f"{split}.jsonl").write_text(dumps_jsonl(rows), encoding="utf-8")
                counts.setdefault(family, {})[split] = len(rows)
                log.info("jglue data: %s/%s <- %s (%d rows)", family, split, path, len(rows))
        shutil.rmtree(tmp / ".downloads", ignore_errors=True)
        (tmp / "counts.json").write_text(json.dumps(counts, indent=2) + "\n")
    return counts


def data_files(data_dir: str | Path, family: str, splits: tuple[str, ...]) -> dict[str, str]:
    """Absolute paths of a materialised family's splits; a missing one fails clearly."""
    out = {}
    for split in splits:
        path = Path(data_dir).resolve() / family / f"{split}.jsonl"
        if not path.is_file():
            raise DataError(
                f"{path}: no {split} data for JGLUE task family '{family}' "
                f"(expected upstream file {SOURCE_FILES[family].get(split)} in jglue.data_dir, or a jglue.urls entry)"
            )
        out[split] = str(path)
    return out
