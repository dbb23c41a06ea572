"""Small I/O helpers: atomic writes, hashing, JSON lines with file:line errors."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from jaflow.errors import DataError


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_tree(root: str | os.PathLike, suffixes: tuple[str, ...] = ()) -> dict[str, str]:
    """sha256 of every file below `root` (relative posix path -> hex digest), sorted."""
    root = Path(root)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    if suffixes:
        files = [p for p in files if p.name.endswith(suffixes)]
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in files}


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path; move it onto `path` only if the block succeeds.

    Works for files and directories: whatever the block creates at the temporary path
    replaces `path`. On error the temporary is removed and `path` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent)) / path.name
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=False) + "\n")


def dumps_jsonl(rows: Iterable[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(dumps_jsonl(rows), encoding="utf-8")


def parse_jsonl(lines: Iterable[str], where: str) -> Iterator[tuple[int, dict]]:
    """(line number, object) per non-empty line; a bad line raises DataError naming where:line."""
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{where}:{lineno}: invalid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{where}:{lineno}: expected a JSON object, got {type(obj).__name__}")
        yield lineno, obj


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    with open(path, encoding="utf-8") as f:
        yield from parse_jsonl(f, str(path))


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read JSON lines; a bad line raises DataError naming file and line number."""
    return [obj for _, obj in iter_jsonl(path)]


CHECKSUMS = "checksums.sha256"


WEIGHT_SUFFIXES = (".safetensors", ".bin")


def write_checksums(model_dir: str | os.PathLike, suffixes: tuple[str, ...] = ()) -> Path:
    """Write `checksums.sha256` over every other file of a model dir, or only those ending in
    `suffixes` (`sha256sum -c` reads it)."""
    root = Path(model_dir)
    digests = {p: d for p, d in sha256_tree(root, suffixes).items() if p != CHECKSUMS}
    with atomic_path(root / CHECKSUMS) as tmp:
        tmp.write_text("".join(f"{d}  {p}\n" for p, d in digests.items()), encoding="utf-8")
    return root / CHECKSUMS


def read_checksums(model_dir: str | os.PathLike) -> dict[str, str]:
    """file -> sha256 from a model dir's `checksums.sha256` (sha256sum format, text or binary mode)."""
    listed = Path(model_dir) / CHECKSUMS
    out = {}
    for lineno, line in enumerate(listed.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        digest, _, name = line.strip().partition(" ")
        name = name.strip().lstrip("*")
        if len(digest) != 64 or not name:
            raise DataError(f"{listed}:{lineno}: expected '<sha256>  <file>', got {line!r}")
        out[name] = digest
    return out


def verify_checksums(model_dir: str | os.PathLike) -> list[str]:
    """Files of `checksums.sha256` that are missing or changed (empty when all match)."""
    root = Path(model_dir)
    return [
        rel
        for rel, digest in read_checksums(root).items()
        if not (root / rel).is_file() or sha256_file(root / rel) != digest
    ]
