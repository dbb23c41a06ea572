"""Rule params that Snakemake's report shows by a short description instead of a dump."""

from __future__ import annotations

from typing import Any


class QuietDict(dict):
    """A dict whose `str` is a description; `repr` (what Snakemake compares to decide whether a
    job must rerun) stays the full dict, so every change still reruns the job."""

    description: str = ""

    def __str__(self) -> str:
        return self.description

    def __reduce__(self):  # pickled into the job's script as a plain dict
        return (dict, (dict(self),))


def quiet(value: dict[str, Any], description: str) -> QuietDict:
    out = QuietDict(value)
    out.description = description
    return out


def config_file_label(path: str) -> str:
    """A config file as a reader finds it: relative to the working directory when inside it."""
    import os

    rel = os.path.relpath(path)
    return os.path.abspath(path) if rel.startswith("..") else rel
