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

# JGLUE releases whose files jaflow reads under their own names (`<task>-v1.x/<split>-v1.x.json`);
# MARC-ja only ever had v1.1 files (JGLUE stopped distributing it).
JGLUE_RELEASES = ("v1.1", "v1.3")
JGLUE_FOUR = ("jsquad", "jcommonsenseqa", "jnli", "marc_ja")
UPSTREAM_SPLIT = {"train": "train", "validation": "valid"}

# family -> split -> file below the source directory (upstream names; v1.1 for the JGLUE four).
SOURCE_FILES: dict[str, dict[str, str]] = {
    "jsquad": {"train": "jsquad-v1.1/train-v1.1.json", "validation": "jsquad-v1.1/valid-v1.1.json"},
    "jcommonsenseqa": {
        "train": "jcommonsenseqa-v1.1/train-v1.1.json",
        "validation": "jcommonsenseqa-v1.1/valid-v1.1.json",
    },
    "jnli": {"train": "jnli-v1.1/train-v1.1.json", "validation": "jnli-v1.1/valid-v1.1.json"},
    "marc_ja": {
        "train": "marc_ja-v1.1/train-v1.1.json",
        "validation": "marc_ja-v1.1/valid-v1.1.json",
    },
    "jaqket_v2": {"train": "jaqket_v2/train.jsonl", "validation": "jaqket_v2/valid.jsonl"},
    "xlsum_ja": {"train": "xlsum_ja/train.jsonl", "test": "xlsum_ja/test.jsonl"},
    "xwinograd_ja": {"test": "xwinograd_ja/test.jsonl"},
    "mgsm": {"train": "mgsm/train.jsonl", "test": "mgsm/test.jsonl"},
}
JAQKET_TOP_K = 5  # kumapo's JAQKET v2 loader (num_contexts=5), as jp-stable read it


def release_file(family: str, split: str, release: str) -> str:
    return f"{family}-{release}/{UPSTREAM_SPLIT[split]}-{release}.json"


def find_source(source_dir: Path, family: str, split: str) -> tuple[Path, str | None] | None:
    """The upstream file of (family, split) in `source_dir` and its JGLUE release, or None.

    v1.1 and v1.3 files are read under their own names; both present is an error (29 JNLI
    validation labels differ between them), as is a `<task>-v*` directory of another release."""
    if family not in JGLUE_FOUR:
        path = source_dir / SOURCE_FILES[family][split]
        return (path, None) if path.is_file() else None
    found = [(source_dir / release_file(family, split, r), r) for r in JGLUE_RELEASES]
    found = [(p, r) for p, r in found if p.is_file()]
    if len(found) > 1:
        raise DataError(
            f"{source_dir}: both {found[0][0].relative_to(source_dir)} and "
            f"{found[1][0].relative_to(source_dir)}: keep one JGLUE release per task"
        )
    return found[0] if found else None


def check_source_dir(source_dir: Path) -> None:
    """Fail on JGLUE-looking directories jaflow would otherwise skip without a word."""
    for d in sorted(source_dir.glob("*-v*")):
        family, _, release = d.name.rpartition("-")
        if d.is_dir() and family in JGLUE_FOUR and release not in JGLUE_RELEASES:
            raise DataError(
                f"{d}: JGLUE release '{release}' is not one jaflow reads ({list(JGLUE_RELEASES)})"
            )
        if d.is_dir() and family in JGLUE_FOUR:
            for f in sorted(d.iterdir()):
                if f.suffix == ".json" and f.name not in {
                    f"{s}-{release}.json" for s in UPSTREAM_SPLIT.values()
                }:
                    raise DataError(
                        f"{f}: not a JGLUE {release} file name ({', '.join(f'{s}-{release}.json' for s in UPSTREAM_SPLIT.values())})"
                    )


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
# MARC-ja as JGLUE (and jp-stable's two choices) has it: neutral reviews are not part of the task
MARC_LABELS = ("positive", "negative")
JCQA_CHOICES = 5


def _need(row: dict, key: str, where: str) -> Any:
    if key not in row or row[key] is None:
        raise DataError(f"{where}: missing field '{key}'")
    return row[key]


def _label(value: Any, names: tuple[str, ...], where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
        return value
    if isinstance(value, str) and value in names:
        return names.index(value)
    raise DataError(f"{where}: field 'label' is {value!r}, expected one of {list(names)}")


def _index(value: Any, n: int, where: str, field: str = "label") -> int:
    """An integer label in range(n) (JSON int, or a string of one), else a DataError naming where."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < n:
        return value
    raise DataError(f"{where}: field '{field}' is {value!r}, expected an integer 0..{n - 1}")


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

    def line_of(qid: str) -> int:
        pos = text.find(json.dumps(qid, ensure_ascii=False))
        return text.count("\n", 0, pos) + 1 if pos >= 0 else 1

    for a, article in enumerate(_need(obj, "data", f"{path}:1")):
        where_a = f"{path}:1: data[{a}]"
        title = _need(article, "title", where_a)
        for p, para in enumerate(_need(article, "paragraphs", where_a)):
            where_p = f"{where_a}.paragraphs[{p}]"
            context = _need(para, "context", where_p)
            for q, qa in enumerate(_need(para, "qas", where_p)):
                where = f"{where_p}.qas[{q}]"
                if isinstance(qa, dict) and isinstance(qa.get("id"), str):
                    where = f"{path}:{line_of(qa['id'])}: {where_p.split(': ', 1)[1]}.qas[{q}] (id {qa['id']})"
                answers = [
                    _need(x, "text", f"{where}.answers") for x in _need(qa, "answers", where)
                ]
                if not answers or not all(isinstance(x, str) and x for x in answers):
                    raise DataError(
                        f"{where}: field 'answers' needs at least one non-empty answer text, got {answers!r}"
                    )
                yield {
                    "id": _need(qa, "id", where),
                    "title": title,
                    "context": context,
                    "question": _need(qa, "question", where),
                    "answers": answers,
                }


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
            row = {
                "id": str(_need(r, "q_id", where)),
                "question": _need(r, "question", where),
                "choices": [_need(r, f"choice{k}", where) for k in range(JCQA_CHOICES)],
                "label": _index(_need(r, "label", where), JCQA_CHOICES, where),
            }
        elif family == "jnli":
            row = {
                "id": str(_need(r, "sentence_pair_id", where)),
                "premise": _need(r, "sentence1", where),
                "hypothesis": _need(r, "sentence2", where),
                "label": _label(_need(r, "label", where), JNLI_LABELS, where),
            }
        elif family == "marc_ja":
            row = {
                "id": str(_need(r, "review_id", where)),
                "text": _need(r, "sentence", where),
                "label": _label(_need(r, "label", where), MARC_LABELS, where),
            }
        elif family == "jaqket_v2":
            # kumapo's loader: the top JAQKET_TOP_K contexts; a question none of them answers is dropped
            ctxs = [
                {
                    "title": _need(c, "title", where),
                    "text": _need(c, "text", where),
                    "has_answer": bool(_need(c, "has_answer", where)),
                }
                for c in _need(r, "ctxs", where)[:JAQKET_TOP_K]
            ]
            answers = list(_need(r, "answers", where))
            if not answers or not all(isinstance(x, str) and x for x in answers):
                raise DataError(
                    f"{where}: field 'answers' needs at least one non-empty answer, got {answers!r}"
                )
            if not any(c["has_answer"] for c in ctxs):
                continue
            row = {
                "id": str(_need(r, "qid", where)),
                "question": _need(r, "question", where),
                "answers": answers,
                "ctxs": ctxs,
            }
        elif family == "xlsum_ja":
            row = {
                "id": str(r.get("id", i)),
                "text": _need(r, "text", where),
                "summary": _need(r, "summary", where),
            }
        elif family == "xwinograd_ja":
            row = {
                "id": str(r.get("id", i)),
                "sentence1": _need(r, "sentence1", where),
                "sentence2": _need(r, "sentence2", where),
                "answer": _index(_need(r, "answer", where), 3, where, "answer"),
            }
            if row["answer"] == 0:
                raise DataError(f"{where}: field 'answer' is 0, expected 1 or 2")
        elif family == "mgsm":
            number = _need(r, "answer_number", where)
            if (
                not isinstance(number, (int, float))
                or isinstance(number, bool)
                or number != int(number)
            ):
                raise DataError(
                    f"{where}: field 'answer_number' is {number!r}, expected an integer"
                )
            row = {
                "id": str(r.get("id", i)),
                "question": _need(r, "question", where),
                "answer": r.get("answer") or "",
                "answer_number": int(number),
            }
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
            raise DataError(
                f"jglue.urls: {url}: sha256 {digest} does not match the configured {sha256}"
            )
    return dest


def materialize(
    out_dir: str | Path,
    source_dir: str | Path | None,
    urls: dict[str, dict[str, dict[str, str]]] | None = None,
    family_dirs: dict[str, str | Path] | None = None,
) -> dict[str, dict[str, int]]:
    """Write `<out_dir>/<family>/<split>.jsonl` for every family found; return row counts.

    `urls` is `{family: {split: {url, sha256}}}`; a URL replaces the file from `source_dir`.
    `family_dirs` is `{family: directory}`: that family's files (upstream names) are read from
    there instead, e.g. the rebuilt MARC-ja (jaflow.data.marc_ja); each must be present.
    `<out_dir>/provenance.json` records, per family and split, the upstream file read, its JGLUE
    release (v1.1 / v1.3, from the file name), its sha256 and the rows kept. Finding no file at all
    is an error (never an empty success).
    """
    urls = urls or {}
    family_dirs = family_dirs or {}
    counts: dict[str, dict[str, int]] = {}
    provenance: dict[str, dict[str, dict[str, Any]]] = {}
    source = Path(source_dir) if source_dir else None
    if source is not None:
        if not source.is_dir():
            raise DataError(f"{source}: JGLUE data directory not found")
        check_source_dir(source)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        for family, files in SOURCE_FILES.items():
            for split, rel in files.items():
                spec = urls.get(family, {}).get(split)
                release = None
                if spec:
                    path = download(
                        spec["url"], spec["sha256"], tmp / ".downloads" / family / Path(rel).name
                    )
                    origin = spec["url"]
                    if family in JGLUE_FOUR:
                        release = next((r for r in JGLUE_RELEASES if r in spec["url"]), None)
                elif family in family_dirs:
                    path = Path(family_dirs[family]) / Path(rel).name
                    if not path.is_file():
                        raise DataError(f"{path}: {family} file missing from {family_dirs[family]}")
                    origin, release = f"{family} (rebuilt)", "v1.1"
                elif (
                    source is not None and (found := find_source(source, family, split)) is not None
                ):
                    path, release = found
                    origin = str(path.relative_to(source))
                else:
                    continue
                rows = read_source(family, path)
                (tmp / family).mkdir(exist_ok=True)
                out = tmp / family / f"{split}.jsonl"
                out.write_text(dumps_jsonl(rows), encoding="utf-8")
                counts.setdefault(family, {})[split] = len(rows)
                provenance.setdefault(family, {})[split] = {
                    "source": origin,
                    "release": release,
                    "source_sha256": sha256_file(path),
                    "sha256": sha256_file(out),
                    "rows": len(rows),
                }
                log.info(
                    "jglue data: %s/%s <- %s (%s, %d rows)",
                    family,
                    split,
                    origin,
                    release or "-",
                    len(rows),
                )
        if not counts:
            raise DataError(
                f"jglue data: no JGLUE file found in {source} (expected e.g. "
                f"{SOURCE_FILES['jcommonsenseqa']['validation']} or its v1.3 name) and no jglue.urls"
            )
        releases = {p["release"] for f in provenance.values() for p in f.values() if p["release"]}
        if len(releases) > 1:
            log.warning("jglue data: JGLUE releases mixed across tasks: %s", sorted(releases))
        shutil.rmtree(tmp / ".downloads", ignore_errors=True)
        (tmp / "counts.json").write_text(json.dumps(counts, indent=2) + "\n")
        (tmp / "provenance.json").write_text(
            json.dumps(provenance, indent=2, sort_keys=True) + "\n"
        )
    return counts


def read_provenance(data_dir: str | Path) -> dict[str, dict[str, dict[str, Any]]]:
    path = Path(data_dir) / "provenance.json"
    if not path.is_file():
        raise DataError(f"{path}: missing (materialise the JGLUE data with this jaflow version)")
    return json.loads(path.read_text(encoding="utf-8"))


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
