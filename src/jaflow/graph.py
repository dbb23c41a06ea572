"""The model graph: bases, training runs and merges, and the paths rules resolve from it.

A model is one of
- a base (`pretrained:` hub id or local path),
- a training run (`from:` another model, `method:`, `dataset:`),
- a merge (`base:` and `experts:`, other models).
Rules never hard-code where a model lives: they ask the graph.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from jaflow.errors import ConfigError
from jaflow.layout import Layout

ADAPTER_METHODS = ("qlora", "lora")
METHODS = ("qlora", "lora", "full", "lisa")


@dataclass(frozen=True)
class BaseModel:
    name: str
    pretrained: str
    tokenizer: str | None
    use_fast: bool
    trust_remote_code: bool
    dtype: str
    chat_format: str | None
    revision: str | None
    # published digests of the weights, {"md5" | "sha256": {file: hex}}: checked by rule
    # verify_weights before any job loads the model
    checksums: dict[str, dict[str, str]] = field(default_factory=dict, hash=False)

    @property
    def deps(self) -> tuple[str, ...]:
        return ()

    @property
    def is_local(self) -> bool:
        return is_local_path(self.pretrained)


@dataclass(frozen=True)
class TrainedModel:
    name: str
    parent: str
    method: str
    dataset: str
    train: dict[str, Any] = field(hash=False)
    select: dict[str, Any] = field(hash=False)
    chat_format: str | None

    @property
    def deps(self) -> tuple[str, ...]:
        return (self.parent,)


@dataclass(frozen=True)
class MergedModel:
    name: str
    base: str
    experts: tuple[dict[str, Any], ...]
    gate_mode: str
    experts_per_token: int
    dtype: str
    chat_format: str | None

    @property
    def expert_names(self) -> tuple[str, ...]:
        return tuple(e["model"] for e in self.experts)

    @property
    def deps(self) -> tuple[str, ...]:
        return (self.base, *self.expert_names)


Node = BaseModel | TrainedModel | MergedModel


def _node_from_config(name: str, spec: dict[str, Any]) -> Node:
    kinds = [k for k in ("pretrained", "from", "experts") if k in spec]
    if len(kinds) != 1:
        raise ConfigError(
            f"models.{name}: a model needs exactly one of 'pretrained' (a base), "
            f"'from' (a training run) or 'base' + 'experts' (a merge); got {kinds or 'none'}"
        )
    # `spec` is validated and filled by the schema (its only home of defaults)
    chat_format = spec["chat_format"]
    if "pretrained" in spec:
        return BaseModel(
            name=name,
            pretrained=str(spec["pretrained"]),
            tokenizer=spec["tokenizer"],
            use_fast=spec["use_fast"],
            trust_remote_code=spec["trust_remote_code"],
            dtype=spec["dtype"],
            chat_format=chat_format,
            revision=spec["revision"],
            checksums={a: dict(spec[a]) for a in ("md5", "sha256") if spec.get(a)},
        )
    if "from" in spec:
        return TrainedModel(
            name=name,
            parent=spec["from"],
            method=spec["method"],
            dataset=spec["dataset"],
            train=dict(spec["train"]),
            select=dict(spec["select"]),
            chat_format=chat_format,
        )
    if "base" not in spec:
        raise ConfigError(f"models.{name}: a merge needs 'base' as well as 'experts'")
    experts = tuple(e if isinstance(e, dict) else {"model": e} for e in spec["experts"])
    return MergedModel(
        name=name,
        base=spec["base"],
        experts=experts,
        gate_mode=spec["gate_mode"],
        experts_per_token=spec["experts_per_token"],
        dtype=spec["dtype"],
        chat_format=chat_format,
    )


class ModelGraph:
    """The validated graph of models named in `config['models']`."""

    def __init__(self, nodes: dict[str, Node], layout: Layout, datasets: set[str] | None = None):
        self.nodes = nodes
        self.layout = layout
        self._check_references(datasets)
        self.order = self._topological_order()
        self._check_adapter_chains()

    @classmethod
    def from_config(cls, config: dict[str, Any], layout: Layout) -> ModelGraph:
        """The graph of a validated, filled config (jaflow.config.load_experiment)."""
        nodes = {name: _node_from_config(name, spec) for name, spec in config["models"].items()}
        return cls(nodes, layout, datasets=set(config["datasets"]))

    # -- validation -------------------------------------------------------------------

    def _check_references(self, datasets: set[str] | None) -> None:
        for node in self.nodes.values():
            for dep in node.deps:
                if dep not in self.nodes:
                    field_name = (
                        "from"
                        if isinstance(node, TrainedModel)
                        else ("base" if dep == getattr(node, "base", None) else "experts")
                    )
                    known = ", ".join(sorted(self.nodes)) or "none"
                    raise ConfigError(
                        f"models.{node.name}.{field_name}: unknown model '{dep}' (known: {known})"
                    )
            if isinstance(node, TrainedModel):
                if node.method not in METHODS:
                    raise ConfigError(
                        f"models.{node.name}.method: '{node.method}' is not one of {list(METHODS)}"
                    )
                if datasets is not None and node.dataset not in datasets:
                    known = ", ".join(sorted(datasets)) or "none"
                    raise ConfigError(
                        f"models.{node.name}.dataset: unknown dataset '{node.dataset}' "
                        f"(known: {known})"
                    )

    def _topological_order(self) -> list[str]:
        order: list[str] = []
        state: dict[str, str] = {}

        def visit(name: str, path: list[str]) -> None:
            if state.get(name) == "done":
                return
            if state.get(name) == "active":
                cycle = path[path.index(name) :] + [name]
                raise ConfigError("models: cycle in the model graph: " + " -> ".join(cycle))
            state[name] = "active"
            for dep in self.nodes[name].deps:
                visit(dep, path + [name])
            state[name] = "done"
            order.append(name)

        for name in self.nodes:
            visit(name, [])
        return order

    def _check_adapter_chains(self) -> None:
        for name, node in self.nodes.items():
            if isinstance(node, TrainedModel) and node.select["merge_adapter"] is False:
                users = self.dependents(name)
                if users:
                    raise ConfigError(
                        f"models.{name}.select.merge_adapter: false, but {users} build on it "
                        "and need full weights; remove the setting or set it to true"
                    )

    # -- queries ----------------------------------------------------------------------

    def __getitem__(self, name: str) -> Node:
        if name not in self.nodes:
            known = ", ".join(sorted(self.nodes)) or "none"
            raise ConfigError(f"unknown model '{name}' (known: {known})")
        return self.nodes[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.order)

    def names(self, kind: type | None = None) -> list[str]:
        return [n for n in self.order if kind is None or isinstance(self.nodes[n], kind)]

    def dependents(self, name: str) -> list[str]:
        return self._dependents.get(name, [])

    @functools.cached_property
    def _dependents(self) -> dict[str, list[str]]:
        # Built once: rules ask per job, and a 1,000-point sweep made the scan quadratic.
        users: dict[str, list[str]] = {}
        for n, node in self.nodes.items():
            for dep in dict.fromkeys(node.deps):
                users.setdefault(dep, []).append(n)
        return users

    def ancestors(self, name: str) -> list[str]:
        """Every model `name` is built from, nearest first, without repeats."""
        seen: list[str] = []
        stack = list(self[name].deps)
        while stack:
            dep = stack.pop(0)
            if dep not in seen:
                seen.append(dep)
                stack.extend(self.nodes[dep].deps)
        return seen

    def root(self, name: str) -> BaseModel:
        """The base model a lineage starts from (a merge follows its `base`)."""
        node = self[name]
        while not isinstance(node, BaseModel):
            node = self.nodes[node.parent if isinstance(node, TrainedModel) else node.base]
        return node

    def needs_full_weights(self, name: str) -> bool:
        return bool(self.dependents(name))

    def is_adapter(self, name: str) -> bool:
        """True when the model's directory holds a peft adapter, not full weights."""
        node = self[name]
        if not isinstance(node, TrainedModel) or node.method not in ADAPTER_METHODS:
            return False
        merge = node.select["merge_adapter"]
        if merge is None:
            merge = self.needs_full_weights(name)
        return not merge

    def merges_adapter(self, name: str) -> bool:
        """True when selection merges a LoRA adapter of this run into full weights."""
        node = self[name]
        return node.method in ADAPTER_METHODS and not self.is_adapter(name)

    def model_path(self, name: str) -> str:
        """Hub id or local directory of the model's own files."""
        node = self[name]
        if isinstance(node, BaseModel):
            return node.pretrained
        return self.layout.model(name)

    def base_dir(self, name: str) -> list[str]:
        """A base model's local directory as a list of inputs: empty for a hub id."""
        node = self[name]
        return [node.pretrained] if node.is_local else []

    def model_inputs(self, name: str) -> list[str]:
        """Files a rule using this model must wait for: a base's directory (none for a hub id) and
        the check of its published checksums, when the config gives them."""
        node = self[name]
        if isinstance(node, BaseModel):
            check = [self.layout.weights_check(name)] if node.checksums else []
            return self.base_dir(name) + check
        inputs = [self.model_path(name)]
        if self.is_adapter(name):
            inputs += self.model_inputs(node.parent)
        return inputs

    def full_weights_path(self, name: str) -> str:
        """Where full weights of `name` are: for an adapter, those of the model it adapts."""
        node = self[name]
        if self.is_adapter(name):
            return self.full_weights_path(node.parent)
        return self.model_path(name)

    def hf_args(self, name: str) -> dict[str, Any]:
        """Arguments for from_pretrained / lm-eval's HF model: pretrained, peft, tokenizer..."""
        node = self[name]
        root = self.root(name)
        own = node if isinstance(node, BaseModel) else None
        if own is not None:
            tokenizer = own.tokenizer or own.pretrained
        else:
            tokenizer = self.model_path(name)  # training and merging save the tokenizer
        dtype = own.dtype if own is not None else getattr(node, "dtype", root.dtype)
        return {
            "pretrained": self.full_weights_path(name),
            "peft": self.model_path(name) if self.is_adapter(name) else None,
            "tokenizer": tokenizer,
            "use_fast": root.use_fast,
            "trust_remote_code": root.trust_remote_code,
            "dtype": dtype,
            "revision": root.revision if own is not None else None,
        }

    def chat_format(self, name: str) -> str | None:
        """The prompt format a model answers in: its own, else inherited from what it is built on."""
        node = self[name]
        while node.chat_format is None and not isinstance(node, BaseModel):
            node = self.nodes[node.parent if isinstance(node, TrainedModel) else node.base]
        return node.chat_format


def is_local_path(ref: str) -> bool:
    """A local path rather than a hub id (jaflow.config.specs.classify_model_ref)."""
    from jaflow.config.specs import classify_model_ref

    return classify_model_ref(ref) == "path"
