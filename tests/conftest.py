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


# The real upstream JGLUE v1.1 files: ../shared/data beside the checkout (or JAFLOW_SHARED_DATA).
# A user's clone has none, and the tests on them skip; CI sets JAFLOW_REQUIRE_SHARED_DATA=1, so
# there they never quietly skip.
SHARED_DATA = Path(os.environ.get("JAFLOW_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data")
REQUIRE_SHARED_DATA = os.environ.get("JAFLOW_REQUIRE_SHARED_DATA") == "1"


def skip_without_shared_data(what: str = "real JGLUE test data") -> None:
    reason = (
        f"{what} not found at {SHARED_DATA} (shared/ beside the checkout, or JAFLOW_SHARED_DATA)"
    )
    if REQUIRE_SHARED_DATA:
        pytest.fail(reason + " and JAFLOW_REQUIRE_SHARED_DATA=1")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        skip_without_shared_data()
    return SHARED_DATA


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


def snakemake_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO_ROOT / "src"), env.get("PYTHONPATH")])
    )
    return env


def snakemake(
    workdir: Path,
    *targets: str,
    config: dict | None = None,
    configfiles=(),
    args=(),
    check: bool = True,
    cores: int = 2,
    default_config: bool = True,
):
    """Run real snakemake on this repo's Snakefile with `workdir` as its working directory.

    `config` is written to a YAML file given after the repo's default config (later files win,
    mappings merge recursively). Returns the CompletedProcess with a `workdir` attribute.
    """
    import subprocess
    import sys

    import yaml

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    files = [str(REPO_ROOT / "config" / "config.yaml")] if default_config else []
    files += [str(f) for f in configfiles]
    if config is not None:
        extra = workdir / "test.yaml"  # names the experiment `test` unless the config names one
        extra.write_text(yaml.safe_dump(config, allow_unicode=True))
        files.append(str(extra))
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        *targets,
        "-s",
        str(REPO_ROOT / "Snakefile"),
        "--cores",
        str(cores),
        "--directory",
        str(workdir),
        *args,
        "--configfile",
        *files,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=snakemake_env(), cwd=workdir)
    proc.workdir = workdir
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


@pytest.fixture
def run_workflow(tmp_path):
    """`run_workflow(*targets, config=..., configfiles=..., args=..., check=..., workdir=...)` in a fresh dir."""

    def run(*targets: str, workdir: Path | None = None, **kwargs):
        return snakemake(workdir or tmp_path / "work", *targets, **kwargs)

    return run


@pytest.fixture(scope="session")
def finished_demo(tmp_path_factory) -> Path:
    """The default demo run once, end to end, for the whole session; returns its work directory.

    Tests that only read the demo's outputs share this run instead of paying for their own.
    """
    workdir = tmp_path_factory.mktemp("demo")
    snakemake(workdir)
    return workdir
