"""The frozen experiment a workflow runs, built once when the DAG is built.

`load_experiment(config, configfiles)` validates and fills `config` in place (Snakemake's
`config` stays the filled dict its rules read), then resolves tiny-world names to paths,
builds the model graph and checks every reference and path a job would need.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jaflow.config.schema import SCHEMA_PATH, validate_config
from jaflow.config.sweeps import expand_sweeps
from jaflow.errors import ConfigError
from jaflow.graph import BaseModel, ModelGraph
from jaflow.layout import TINY_PREFIX, Layout

HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
USER_DATA = "data/"  # files the user supplies: rule user_data stops with instructions when absent
TINY = "tiny"


@dataclass(frozen=True)
class Experiment:
    name: str
    seed: int
    layout: Layout
    graph: ModelGraph
    uses_tiny: bool = False


def canonical(obj: Any) -> Any:
    """Plain data with sorted keys: Snakemake compares params by repr, so key order must not
    matter (the same config dumped with sorted keys reran everything)."""
    if isinstance(obj, Mapping):
        return {str(k): canonical(obj[k]) for k in sorted(obj, key=str)}
    if isinstance(obj, (list, tuple)):
        return [canonical(v) for v in obj]
    return obj


def experiment_name(config: Mapping[str, Any], configfiles: Sequence[str]) -> str:
    """`name:`, else the stem of the last config file given."""
    if config.get("name"):
        return str(config["name"])
    if configfiles:
        return Path(configfiles[-1]).stem
    raise ConfigError("name: not set, and no config file to name the experiment after")


def classify_model_ref(ref: str) -> str:
    """'path' or 'hub': a path starts with / ./ ../ ~, exists, sits in an existing local folder
    or cannot be a hub id; anything else must look like a hub id `org/name`."""
    if ref.startswith(("/", "./", "../", "~")) or Path(ref).expanduser().exists():
        return "path"
    if "/" in ref and Path(ref.split("/", 1)[0]).is_dir():
        return "path"
    return "hub" if HUB_ID.match(ref) else "path"


def _in_hub_cache(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


class _Resolver:
    """Resolves `tiny:` names to this experiment's tiny world, and checks local paths."""

    def __init__(self, layout: Layout):
        self.layout = layout
        self.uses_tiny = False

    def tiny(self, ref: Any, key: str) -> Any:
        if isinstance(ref, str) and ref.startswith(TINY_PREFIX):
            self.uses_tiny = True
            return self.layout.resolve_tiny(ref, key)
        return ref

    def made_here(self, path: str) -> bool:
        return path.startswith(self.layout.root + "/")

    def local_file(self, path: str, key: str, what: str) -> None:
        if self.made_here(path) or path.startswith(USER_DATA) or Path(path).expanduser().exists():
            return
        raise ConfigError(f"{key}: {what} '{path}' does not exist")


def _resolve_models(config: dict[str, Any], r: _Resolver) -> None:
    uncached = []
    for name, spec in config["models"].items():
        if "pretrained" not in spec:
            continue
        key = f"models.{name}.pretrained"
        spec["pretrained"] = ref = r.tiny(spec["pretrained"], key)
        if spec.get("tokenizer"):
            spec["tokenizer"] = r.tiny(spec["tokenizer"], f"models.{name}.tokenizer")
        kind = classify_model_ref(ref)
        spec["source"] = kind
        if kind == "path":
            if not (r.made_here(ref) or Path(ref).expanduser().is_dir()):
                raise ConfigError(
                    f"{key}: '{ref}' is a local path (it is not a hub id 'org/name') and no such "
                    "directory exists; fix the path, or give a hub id"
                )
        elif os.environ.get("HF_HUB_OFFLINE") == "1" and not _in_hub_cache(ref):
            uncached.append(f"models.{name}")
    if uncached:
        print(
            f"jaflow: HF_HUB_OFFLINE=1 and no local copy of the hub models of {', '.join(uncached)}: "
            "jobs loading them will fail (a local directory is written ./dir)",
            file=sys.stderr,
        )


def _resolve_datasets(config: dict[str, Any], r: _Resolver) -> None:
    for name, dataset in config["datasets"].items():
        for i, source in enumerate(dataset["sources"]):
            if "path" in source:
                key = f"datasets.{name}.sources.{i}.path"
                source["path"] = r.tiny(source["path"], key)
                r.local_file(source["path"], key, "source file")


def _resolve_jglue(config: dict[str, Any], r: _Resolver) -> None:
    jglue = config["jglue"]
    if jglue["data_dir"] == TINY:
        r.uses_tiny = True
        jglue["data_dir"] = r.layout.tiny("jglue")
    elif jglue["runs"] and not jglue["data_dir"] and not jglue["urls"]:
        raise ConfigError(
            "jglue.data_dir: not set, and jglue.runs evaluate models: give the directory of the "
            "upstream JGLUE files (docs/REPRODUCE.md), or 'tiny' for the tiny offline world"
        )
    elif jglue["data_dir"]:
        r.local_file(jglue["data_dir"], "jglue.data_dir", "JGLUE directory")
    if jglue["marc_ja"]:
        r.local_file(jglue["marc_ja"]["reviews"], "jglue.marc_ja.reviews", "Amazon reviews file")


def _resolve_mtbench(config: dict[str, Any], r: _Resolver) -> None:
    mt = config["mtbench"]
    if mt["questions"] == TINY:
        r.uses_tiny = True
        mt["questions"] = r.layout.tiny("mtbench_questions")
    elif mt["models"] and not mt["questions"]:
        raise ConfigError(
            "mtbench.questions: not set, and mtbench.models are answered: give question.jsonl "
            "(a path or URL, docs/REPRODUCE.md), or 'tiny' for the tiny offline world"
        )
    for key in ("questions", "reference_answers", "judge_prompts"):
        source = mt[key]
        if isinstance(source, dict):  # {name, source, sha256}: a pinned file
            key, source = f"{key}.source", source["source"]
        if source and not str(source).startswith(("http://", "https://")):
            r.local_file(source, f"mtbench.{key}", "file")


def load_experiment(
    config: dict[str, Any], configfiles: Sequence[str] = (), schema_path: str | Path = SCHEMA_PATH
) -> Experiment:
    """Validate and fill `config` in place, expand sweeps, resolve names, check paths."""
    validate_config(config, schema_path)
    expand_sweeps(config)
    name = experiment_name(config, configfiles)
    config["name"] = name
    layout = Layout(name)
    resolver = _Resolver(layout)
    _resolve_models(config, resolver)
    _resolve_datasets(config, resolver)
    _resolve_jglue(config, resolver)
    _resolve_mtbench(config, resolver)
    graph = ModelGraph.from_config(config, layout)
    return Experiment(
        name=name,
        seed=config["seed"],
        layout=layout,
        graph=graph,
        uses_tiny=resolver.uses_tiny
        or any(
            isinstance(n, BaseModel) and resolver.made_here(n.pretrained)
            for n in graph.nodes.values()
        ),
    )
