"""Read a dataset source (hub id or local JSON/JSONL/Parquet/CSV) into mapped records.

A source opens as a `RowTable`: its length, and the rows at given indices. Sampling rules
that need no values (all, random N, head N) pick indices first, so a hub dataset of millions
of rows (seed 003's flan2021, 5.36 M) is read only at the rows kept: the Arrow table is
memory-mapped from the `datasets` cache and `select`ed by index, never turned into Python
objects whole. The indices are the ones the same rule picks over a list of that length, so
the rows are identical to reading every row first, for the same seed.

Each record keeps where it came from (file and line) so that a bad row is reported there.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jaflow.errors import DataError
from jaflow.io import iter_jsonl, sha256_file
from jaflow.provenance import UNPINNED

ROLE_NAMES = {
    "user": "user",
    "human": "user",
    "prompter": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "bot": "assistant",
    "system": "system",
}


@dataclass
class Record:
    index: int  # position in the source, 0-based
    where: str  # "file:line" or "hub-id[split]#row"
    raw: dict[str, Any]
    fields: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, str]] | None = None

    def value(self, column: str) -> Any:
        """A column by source name first, then by jaflow field name."""
        return self.raw.get(column, self.fields.get(column))


def _base_name(name: str) -> str:
    """`answers[text][0]` -> `answers`, `a.b` -> `a`: the row field a format field reads."""
    return re.split(r"[.\[]", name, maxsplit=1)[0]


def template_fields(template: str | Mapping[str, str]) -> list[str]:
    """Fields a template reads: instruction/input/output, or those in custom format strings."""
    if isinstance(template, Mapping):
        fmt = string.Formatter()
        names = [_base_name(n) for part in template.values() for _, n, _, _ in fmt.parse(part) if n]
        return sorted(set(names))
    return ["instruction", "input", "output"]


OPTIONAL_FIELDS = {"input"}


# -- tables --------------------------------------------------------------------------------


class RowTable:
    """Rows of a source by index: `len(table)` and `table.rows(indices)` -> [(where, row)]."""

    description: dict[str, Any]

    def __len__(self) -> int:
        raise NotImplementedError

    def rows(self, indices: Sequence[int]) -> list[tuple[str, dict]]:
        raise NotImplementedError


class ListTable(RowTable):
    def __init__(self, rows: list[tuple[str, dict]], description: dict[str, Any]):
        self._rows, self.description = rows, description

    def __len__(self) -> int:
        return len(self._rows)

    def rows(self, indices: Sequence[int]) -> list[tuple[str, dict]]:
        return [self._rows[i] for i in indices]


class ArrowTable(RowTable):
    """A `datasets.Dataset` (memory-mapped Arrow), read only at the selected indices."""

    def __init__(self, ds: Any, where: str, description: dict[str, Any]):
        self._ds, self._where, self.description = ds, where, description

    def __len__(self) -> int:
        return len(self._ds)

    def rows(self, indices: Sequence[int]) -> list[tuple[str, dict]]:
        picked = self._ds.select(list(indices)) if len(indices) != len(self._ds) else self._ds
        return [(f"{self._where}#{i}", dict(r)) for i, r in zip(indices, picked, strict=True)]


def open_hub(spec: dict[str, Any]) -> ArrowTable:
    """A hub dataset at the source's revision (and data_dir), as an Arrow table."""
    import datasets

    try:
        ds = datasets.load_dataset(
            spec["hub"],
            spec["hub_config"],
            split=spec["split"],
            revision=spec["revision"],
            data_dir=spec["data_dir"],
        )
    except RuntimeError as e:  # datasets >= 4: "Dataset scripts are no longer supported"
        if "script" in str(e).lower():
            raise DataError(
                f"source '{spec['name']}': {spec['hub']} is a loading-script dataset, which this "
                f"datasets version refuses ({e}). Read its parquet conversion instead "
                f"(revision: refs/convert/parquet, data_dir: <config>) or a file you download "
                f"(path:); docs/REPRODUCE.md says how for the card datasets."
            ) from None
        raise
    where = f"{spec['hub']}[{spec['split']}]"
    description = {
        "hub": spec["hub"],
        "config": spec["hub_config"],
        "data_dir": spec["data_dir"],
        "split": spec["split"],
        "revision": spec["revision"] or UNPINNED,
        "fingerprint": getattr(ds, "_fingerprint", None),
        "rows": len(ds),
    }
    return ArrowTable(ds, where, description)


def open_source(spec: dict[str, Any]) -> RowTable:
    """The source's rows as a table, and a description of the input for the manifest."""
    if "hub" in spec:
        return open_hub(spec)
    path = Path(spec["path"])
    if not path.exists():
        raise DataError(f"source '{spec['name']}': file not found: {path}")
    fmt = spec["format"]
    if fmt == "auto":
        fmt = {".jsonl": "jsonl", ".json": "json", ".parquet": "parquet", ".csv": "csv"}.get(
            path.suffix
        )
        if fmt is None:
            raise DataError(
                f"source '{spec['name']}': cannot tell the format of {path}; set format"
            )
    description = {"path": str(path), "format": fmt, "sha256": sha256_file(path)}
    if fmt == "parquet":
        import datasets

        ds = datasets.Dataset.from_parquet(str(path))
        return ArrowTable(ds, str(path), description)
    return ListTable(_read_file(path, fmt), description)


def _read_file(path: Path, fmt: str) -> list[tuple[str, dict]]:
    if fmt == "jsonl":
        return [(f"{path}:{lineno}", row) for lineno, row in iter_jsonl(path)]
    if fmt == "json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            data = data["data"]
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise DataError(f"{path}: expected a JSON array of objects (or JSON lines)")
        return [(f"{path}#{i}", r) for i, r in enumerate(data)]
    import pandas as pd

    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return [(f"{path}:{i + 2}", r) for i, r in enumerate(frame.to_dict("records"))]


# -- conversations -------------------------------------------------------------------------

_ZEPHYR = re.compile(r"<\|(system|user|assistant)\|>")
_CHATML = re.compile(r"<\|im_start\|>([^\n]*)\n(.*?)(?:<\|im_end\|>|(?=<\|im_start\|>)|\Z)", re.S)


def parse_tagged(text: str, fmt: str, where: str, column: str) -> list[dict[str, str]]:
    """Turns of a zephyr- or ChatML-tagged string, tags and end markers removed."""
    if not isinstance(text, str):
        raise DataError(f"{where}: column '{column}' ({fmt}) must be a string")
    turns = []
    if fmt == "zephyr":
        parts = _ZEPHYR.split(text)
        if parts[0].strip():
            raise DataError(
                f"{where}: column '{column}' (zephyr): text before the first tag: {parts[0][:60]!r}"
            )
        for role, body in zip(parts[1::2], parts[2::2], strict=True):
            turns.append({"role": role, "content": body.replace("</s>", "").strip()})
    else:
        for role, body in _CHATML.findall(text):
            turns.append({"role": role.strip(), "content": body.strip()})
    if not turns:
        raise DataError(f"{where}: column '{column}': no {fmt} turns found")
    return turns


def _messages(where: str, column: str, value: Any, fmt: str) -> list[dict[str, str]]:
    if fmt == "messages":
        if not isinstance(value, list) or not value:
            raise DataError(f"{where}: column '{column}' must be a non-empty list of messages")
        turns = []
        for turn in value:
            role = ROLE_NAMES.get(str(turn.get("role", turn.get("from", ""))).lower())
            content = turn.get("content", turn.get("value"))
            if role is None or content is None:
                raise DataError(
                    f"{where}: column '{column}': a message needs role/from and content/value"
                )
            turns.append({"role": role, "content": str(content)})
    else:
        turns = parse_tagged(value, fmt, where, column)
        for t in turns:
            if t["role"] not in ROLE_NAMES:
                raise DataError(f"{where}: column '{column}' ({fmt}): unknown role {t['role']!r}")
            t["role"] = ROLE_NAMES[t["role"]]
    system = "\n\n".join(t["content"] for t in turns if t["role"] == "system" and t["content"])
    messages = [t for t in turns if t["role"] != "system"]
    while messages and messages[-1]["role"] != "assistant":
        messages.pop()  # a trailing user turn has no reply to train on
    if not messages or messages[0]["role"] != "user":
        raise DataError(
            f"{where}: column '{column}': the conversation needs a user turn, then an assistant turn"
        )
    if system:
        messages[0] = {"role": "user", "content": f"{system}\n\n{messages[0]['content']}"}
    return messages


def load_records(
    table: RowTable, indices: Sequence[int], spec: dict[str, Any], template: str | Mapping[str, str]
) -> list[Record]:
    """The rows at `indices`, mapped to the template's fields; errors name file and line."""
    columns = spec["columns"]
    conversations = spec["conversations"]
    records = []
    for index, (where, raw) in zip(indices, table.rows(indices), strict=True):
        rec = Record(index=index, where=where, raw=raw)
        if conversations:
            if conversations not in raw:
                raise DataError(f"{where}: missing column '{conversations}' (conversations)")
            rec.messages = _messages(
                where, conversations, raw[conversations], spec["conversation_format"]
            )
            users = [m["content"] for m in rec.messages if m["role"] == "user"]
            rec.fields = {
                "instruction": users[0] if users else "",
                "input": "",
                "output": rec.messages[-1]["content"],
            }
        else:
            for name in template_fields(template):
                column = columns.get(name, name)
                if column not in raw or raw[column] is None:
                    if name in OPTIONAL_FIELDS:
                        rec.fields[name] = ""
                        continue
                    raise DataError(
                        f"{where}: missing column '{column}' (field '{name}' of source "
                        f"'{spec['name']}'; columns: {sorted(raw)})"
                    )
                rec.fields[name] = raw[column]
        records.append(rec)
    return records
