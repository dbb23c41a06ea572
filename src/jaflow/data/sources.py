"""Read a dataset source (hub id or local JSON/JSONL/Parquet/CSV) into mapped records.

Each record keeps where it came from (file and line) so that a bad row is reported there.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jaflow.errors import DataError
from jaflow.io import iter_jsonl, sha256_file

ROLE_NAMES = {"user": "user", "human": "user", "prompter": "user",
              "assistant": "assistant", "gpt": "assistant", "bot": "assistant"}


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


def template_fields(template: str | Mapping[str, str]) -> list[str]:
    """Fields a template reads: instruction/input/output, or those in custom format strings."""
    if isinstance(template, Mapping):
        fmt = string.Formatter()
        names = [n for part in template.values() for _, n, _, _ in fmt.parse(part) if n]
        return sorted(set(names))
    return ["instruction", "input", "output"]


OPTIONAL_FIELDS = {"input"}


def _read_rows(spec: dict[str, Any]) -> tuple[list[tuple[str, dict]], dict[str, Any]]:
    """Rows with their location, and a description of the input for the manifest."""
    if "hub" in spec:
        import datasets

        ds = datasets.load_dataset(spec["hub"], spec.get("hub_config"), split=spec["split"])
        where = f"{spec['hub']}[{spec['split']}]"
        rows = [(f"{where}#{i}", dict(r)) for i, r in enumerate(ds)]
        return rows, {"hub": spec["hub"], "config": spec.get("hub_config"), "split": spec["split"],
                      "fingerprint": getattr(ds, "_fingerprint", None)}
    path = Path(spec["path"])
    if not path.exists():
        raise DataError(f"source '{spec['name']}': file not found: {path}")
    fmt = spec.get("format", "auto")
    if fmt == "auto":
        fmt = {".jsonl": "jsonl", ".json": "json", ".parquet": "parquet", ".csv": "csv"}.get(path.suffix)
        if fmt is None:
            raise DataError(f"source '{spec['name']}': cannot tell the format of {path}; set format")
    rows = _read_file(path, fmt)
    return rows, {"path": str(path), "format": fmt, "sha256": sha256_file(path)}


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

    if fmt == "csv":
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        return [(f"{path}:{i + 2}", r) for i, r in enumerate(frame.to_dict("records"))]
    frame = pd.read_parquet(path)
    return [(f"{path}#{i}", r) for i, r in enumerate(frame.to_dict("records"))]


def _messages(rec_where: str, column: str, value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise DataError(f"{rec_where}: column '{column}' must be a non-empty list of messages")
    messages = []
    for turn in value:
        role = ROLE_NAMES.get(str(turn.get("role", turn.get("from", ""))).lower())
        content = turn.get("content", turn.get("value"))
        if role is None or content is None:
            if str(turn.get("role", turn.get("from", ""))).lower() == "system":
                continue
            raise DataError(f"{rec_where}: column '{column}': a message needs role/from and content/value")
        messages.append({"role": role, "content": str(content)})
    if messages[-1]["role"] != "assistant":
        raise DataError(f"{rec_where}: column '{column}': the conversation must end with an assistant turn")
    return messages


def load_source(spec: dict[str, Any], template: str | Mapping[str, str]) -> tuple[list[Record], dict]:
    """All rows of a source, mapped to the template's fields; errors name file and line."""
    rows, described = _read_rows(spec)
    columns = spec.get("columns") or {}
    conversations = spec.get("conversations")
    records = []
    for index, (where, raw) in enumerate(rows):
        rec = Record(index=index, where=where, raw=raw)
        if conversations:
            if conversations not in raw:
                raise DataError(f"{where}: missing column '{conversations}' (conversations)")
            rec.messages = _messages(where, conversations, raw[conversations])
            users = [m["content"] for m in rec.messages if m["role"] == "user"]
            rec.fields = {"instruction": users[0] if users else "", "input": "",
                          "output": rec.messages[-1]["content"]}
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
    return records, described
