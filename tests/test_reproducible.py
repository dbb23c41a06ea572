"""The same config run twice, in two fresh directories, gives byte-identical results."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from conftest import snakemake

# Kept apart on purpose: how long things took, and checkpoints (not outputs: the final models are).
TIMING_FILES = {"timings.json", "run_info.json"}


def result_files(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if p.is_file() and p.name not in TIMING_FILES and "checkpoints" not in rel.parts:
            out[rel.as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.mark.workflow
def test_two_fresh_runs_of_the_demo_give_byte_identical_results(finished_demo, tmp_path):
    again = snakemake(tmp_path / "again").workdir
    first, second = (
        result_files(finished_demo / "results/demo"),
        result_files(again / "results/demo"),
    )
    assert sorted(first) == sorted(second)
    assert [p for p in first if first[p] != second[p]] == []
