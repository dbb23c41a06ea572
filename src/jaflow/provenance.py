"""Content identity of models: what a result depends on, never a name or a path.

A model the workflow made carries `checksums.sha256` over its files; its identity is the sha256 of
that listing. A local model from elsewhere is hashed file by file. A hub model is its id and the
`revision` the config pins, or "unpinned" (recorded, so a report can say so).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from jaflow.io import CHECKSUMS, sha256_file, sha256_tree, write_json

UNPINNED = "unpinned"


def digest(obj: Any) -> str:
    """sha256 of a JSON-able object, independent of dict key order."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def path_identity(ref: str, revision: str | None = None) -> dict[str, str]:
    """Identity of one model reference: a local directory (by content) or a hub id."""
    path = Path(ref).expanduser()
    if path.is_dir():
        listing = path / CHECKSUMS
        if listing.is_file():
            return {"kind": "local", "sha256": sha256_file(listing)}
        return {"kind": "local", "sha256": digest(sha256_tree(path))}
    if path.is_file():
        return {"kind": "local", "sha256": sha256_file(path)}
    return {"kind": "hub", "id": ref, "revision": revision or UNPINNED}


def model_identity(hf_args: dict[str, Any]) -> dict[str, Any]:
    """Identity of what `hf_args` (the graph's `from_pretrained` arguments) load: weights,
    adapter and tokenizer."""
    revision = hf_args.get("revision")
    ident: dict[str, Any] = {"weights": path_identity(hf_args["pretrained"], revision)}
    if hf_args.get("peft"):
        ident["adapter"] = path_identity(hf_args["peft"])
    tokenizer = hf_args.get("tokenizer")
    if tokenizer and tokenizer not in (hf_args["pretrained"], hf_args.get("peft")):
        ident["tokenizer"] = path_identity(tokenizer, hf_args.get("tokenizer_revision"))
    ident["sha256"] = digest(ident)
    return ident


# -- published weight checksums (config `md5:` / `sha256:` of a base model) ---------------------


def file_digest(path: str | Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_model_files(
    pretrained: str,
    checksums: dict[str, dict[str, str]],
    revision: str | None = None,
    key: str = "models",
) -> dict[str, dict[str, str]]:
    """Check a base model's files against the config's `md5:` / `sha256:` (file -> hex).

    `checksums` is {"md5": {file: hex}, "sha256": {file: hex}}. A local directory is read in
    place; a hub id is fetched file by file at `revision` through huggingface_hub (its cache,
    so after from_pretrained this reads what was loaded). Returns {file: {algorithm: hex}} of
    what was checked; a mismatch or a missing file raises DataError naming the config key.
    """
    from jaflow.errors import DataError

    wanted: dict[str, dict[str, str]] = {}
    for algorithm in ("md5", "sha256"):
        for name, hexdigest in (checksums.get(algorithm) or {}).items():
            wanted.setdefault(name, {})[algorithm] = hexdigest.lower()
    checked: dict[str, dict[str, str]] = {}
    local = Path(pretrained).expanduser()
    for name, algorithms in sorted(wanted.items()):
        if local.is_dir():
            path = local / name
            if not path.is_file():
                raise DataError(f"{key}.md5/sha256: {name} is not a file of {pretrained}")
        else:
            from huggingface_hub import hf_hub_download

            path = Path(hf_hub_download(pretrained, name, revision=revision))
        checked[name] = {}
        for algorithm, expected in algorithms.items():
            got = file_digest(path, algorithm)
            if got != expected:
                raise DataError(
                    f"{key}.{algorithm}: {pretrained}/{name} (revision {revision or UNPINNED}) has "
                    f"{algorithm} {got}, the config expects {expected}: not the published weights"
                )
            checked[name][algorithm] = got
    return checked


def write_weights_check(spec: dict[str, Any], out: str | Path) -> dict[str, Any]:
    """Rule verify_weights: check a base's files against `spec["checksums"]` and write what was
    checked to `out` (nothing is written when a digest differs)."""
    checked = verify_model_files(
        spec["pretrained"], spec["checksums"], spec["revision"], spec["key"]
    )
    record = {
        "pretrained": spec["pretrained"],
        "revision": spec["revision"] or UNPINNED,
        "files": checked,
    }
    write_json(out, record)
    return record
