"""Shared fixtures: the tiny tokenizer and tiny models, built once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = REPO_ROOT.parent / "shared" / "data"
    if not path.exists():
        pytest.fail(f"real JGLUE test data not found at {path} (shared/ beside the checkout)")
    return path


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory) -> Path:
    from jaflow.tiny import build_tokenizer, template_texts
    from jaflow.tiny.instructions import make_instructions

    rows = make_instructions(120, seed=0)
    texts = [v for r in rows for v in r.values()] + template_texts()
    out = tmp_path_factory.mktemp("tiny") / "tokenizer"
    build_tokenizer(texts, out, vocab_size=400)
    return out


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tiny_tokenizer_dir):
    """Factory: tiny_model("llama") -> path of a random tiny model (cached per architecture)."""
    from jaflow.tiny import build_model

    root = tmp_path_factory.mktemp("tiny_models")
    cache: dict[str, Path] = {}

    def make(arch: str = "llama") -> Path:
        if arch not in cache:
            cache[arch] = build_model(arch, tiny_tokenizer_dir, root / arch, seed=0)
        return cache[arch]

    return make
