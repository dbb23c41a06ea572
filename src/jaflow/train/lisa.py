"""LISA (arXiv 2403.17919): embeddings and LM head always train; every K steps a fresh uniform
sample of γ decoder layers trains and the other layers are frozen.

`train.lisa_variant: paper` (the default) is the algorithm, avoiding two known mistakes:
- LMFlow#726: freezing before the optimizer is built, so the Trainer never registers the layers.
  Here every parameter is trainable when the optimizer is created; freezing first happens in
  `on_step_begin` of step 0.
- LMFlow#729/#768: keeping the Adam moments of a deactivated layer and reusing them stale when it
  comes back. Here a deactivated layer's optimizer state (and gradient) is dropped (as BAdam does),
  so a re-activated layer starts with fresh moments.
and it is memory-lean: when the model is loaded in a compute dtype below fp32 (bf16 on GPU, one
process), only the trainable part (active layers, embeddings, head, final norm) is held in fp32
(the masters the optimizer updates); a deactivated layer is cast back to the compute dtype, an
activated one up to fp32. Gradients and Adam moments exist only for that part. Under FSDP the
fp32 masters of all layers are kept, sharded over the ranks (1/N each); gradients and moments
still exist only for the active layers.

`train.lisa_variant: lmflow` reproduces LMFlow's LISA as of March 2024 (its
DynamicLayerActivationCallback as quoted in LMFlow#726): all decoder layers are frozen when the
callback is built, i.e. before the Trainer creates its optimizer, so the optimizer holds only the
embeddings, final norm and head; layers are re-sampled (numpy's global RNG, seeded by the
Trainer's set_seed) at every step that is a multiple of K and at step 1; sampled layers get
gradients but are never updated, so the loss does not depend on γ (the symptom of #726).

The sample of period p is a pure function of (seed, p), so a resumed run trains the same layers.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import TrainerCallback

from jaflow.errors import ConfigError

log = logging.getLogger(__name__)

VARIANTS = ("paper", "lmflow")


def find_layers(model: nn.Module) -> nn.ModuleList:
    """The decoder layer list: Llama/Mistral/Mixtral `model.layers`, GPT-NeoX `gpt_neox.layers`,
    GPT-2 `transformer.h`; otherwise the longest ModuleList of `num_hidden_layers` blocks."""
    n = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    candidates = [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, nn.ModuleList) and len(m) > 0
    ]
    for name, m in candidates:
        if n is not None and len(m) == n and name.rsplit(".", 1)[-1] in ("layers", "h", "blocks"):
            return m
    matching = [m for _, m in candidates if n is not None and len(m) == n]
    if not matching:
        raise ConfigError(f"LISA: cannot find the decoder layers of {type(model).__name__}")
    return matching[0]


def sample_layers(num_layers: int, n_active: int, seed: int, period: int) -> list[int]:
    """γ distinct layer indices for switch period `period`, uniform, seeded."""
    if n_active > num_layers:
        raise ConfigError(
            f"train.lisa_layers: {n_active} active layers but the model has {num_layers}"
        )
    rng = np.random.default_rng([seed, period])
    return sorted(int(i) for i in rng.choice(num_layers, size=n_active, replace=False))


def schedule(
    num_layers: int, n_active: int, interval: int, seed: int, max_steps: int
) -> list[tuple[int, list[int]]]:
    """(first step of the period, active layers) for every period of a run of `max_steps`."""
    return [
        (s, sample_layers(num_layers, n_active, seed, s // interval))
        for s in range(0, max(max_steps, 1), interval)
    ]


def held_dtype(train, compute: torch.dtype, world_size: int) -> torch.dtype:
    """The dtype LISA's model is loaded in: the compute dtype for the paper variant in one process
    (fp32 masters only for what trains, cast in by LisaCallback); fp32 otherwise (FSDP shards
    the fp32 masters itself; DDP's gradient buckets are fixed at wrap time, so their dtype
    cannot follow the layer switches)."""
    if (
        train["lisa_variant"] == "paper"
        and world_size == 1
        and train["distributed"]["strategy"] == "ddp"
    ):
        return compute
    return torch.float32


def _is_sharded(p) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(p, DTensor)


class LisaCallback(TrainerCallback):
    """Switch the active layers every `interval` optimizer steps; drop stale optimizer state."""

    def __init__(
        self, model: nn.Module, n_active: int, interval: int, seed: int, variant: str = "paper"
    ):
        if variant not in VARIANTS:
            raise ConfigError(f"train.lisa_variant: '{variant}' is not one of {list(VARIANTS)}")
        self.layers = find_layers(model)
        self.n_active = n_active
        self.interval = interval
        self.seed = seed
        self.variant = variant
        self.active: list[int] = []
        self.history: list[tuple[int, list[int]]] = []
        if n_active > len(self.layers):
            raise ConfigError(
                f"train.lisa_layers: {n_active} active layers but the model has {len(self.layers)}"
            )
        layer_ids = {id(p) for p in self.layers.parameters()}
        self.always = [
            p for p in model.parameters() if id(p) not in layer_ids
        ]  # embeddings, norm, head
        self.held = next(self.layers.parameters()).dtype
        if variant == "lmflow":
            self._freeze_all()  # before the optimizer exists: the LMFlow#726 behaviour
        elif self.held != torch.float32:
            for p in self.always:  # fp32 masters for what always trains
                p.data = p.data.float()

    # -- paper ------------------------------------------------------------------------------

    def _set_layer(self, layer: nn.Module, on: bool, optimizer) -> None:
        for p in layer.parameters():
            if not on:
                p.grad = None
                if optimizer is not None:
                    optimizer.state.pop(p, None)
            if self.held != torch.float32 and not _is_sharded(p):
                p.data = p.data.to(torch.float32 if on else self.held)
            p.requires_grad_(on)

    def _activate(self, period: int, optimizer=None) -> None:
        new = sample_layers(len(self.layers), self.n_active, self.seed, period)
        for i, layer in enumerate(self.layers):
            self._set_layer(layer, i in new, optimizer)
        self.active = new

    def _reload_masters(self, checkpoint: Path) -> None:
        """Resume in a held dtype below fp32: the model was loaded (and its checkpoint read) in
        that dtype; the fp32 masters of what trains come back from the checkpoint's tensors."""
        from safetensors import safe_open

        index = checkpoint / "model.safetensors.index.json"
        files = (
            sorted(set(json.loads(index.read_text())["weight_map"].values()))
            if index.is_file()
            else ["model.safetensors"]
        )
        wanted = {id(p) for p in self.always} | {
            id(p) for i in self.active for p in self.layers[i].parameters()
        }
        model_params = dict(self._model.named_parameters())
        found = 0
        for name in files:
            with safe_open(str(checkpoint / name), framework="pt") as f:
                for key in f.keys():  # noqa: SIM118 (safe_open has no __iter__)
                    p = model_params.get(key)
                    if p is not None and id(p) in wanted:
                        p.data = f.get_tensor(key).to(torch.float32)
                        found += 1
        log.info("LISA: %d fp32 master tensors reloaded from %s", found, checkpoint)

    # -- lmflow -----------------------------------------------------------------------------

    def _freeze_all(self) -> None:
        for p in self.layers.parameters():
            p.requires_grad = False

    def _lmflow_switch(self) -> None:
        self._freeze_all()
        self.active = sorted(
            int(i) for i in np.random.choice(range(len(self.layers)), self.n_active, replace=False)
        )
        for i in self.active:
            for p in self.layers[i].parameters():
                p.requires_grad = True

    def rows(self, global_step: int) -> list[tuple[int, list[int]]]:
        """(first step, active layers) of every period of a run that ended at `global_step`:
        the seeded schedule (paper); what this process switched to (lmflow, unseeded)."""
        if self.variant == "lmflow":
            return list(self.history)
        return schedule(len(self.layers), self.n_active, self.interval, self.seed, global_step)

    # -- callback ---------------------------------------------------------------------------

    def on_train_begin(self, args, state, control, optimizer=None, model=None, **kwargs):
        if self.variant == "lmflow":
            return
        # Fresh run or resume: the optimizer already holds every parameter (the #726 trap).
        if optimizer is not None:
            registered = {id(p) for g in optimizer.param_groups for p in g["params"]}
            missing = [n for n, p in self.layers.named_parameters() if id(p) not in registered]
            if missing:
                raise RuntimeError(
                    f"LISA: {len(missing)} layer parameters are not in the optimizer, e.g. {missing[0]}"
                )
        # Resuming mid-period: train the same layers, keep their restored moments.
        self._activate(state.global_step // self.interval, optimizer=None)
        if state.global_step > 0 and self.held != torch.float32 and model is not None:
            self._model = model
            self._reload_masters(Path(args.output_dir) / f"checkpoint-{state.global_step}")

    def on_step_begin(self, args, state, control, optimizer=None, **kwargs):
        if self.variant == "lmflow":
            if state.global_step % self.interval == 0 or state.global_step == 1:
                self._lmflow_switch()
                self.history.append((state.global_step, list(self.active)))
            return
        if state.global_step % self.interval == 0:
            self._activate(state.global_step // self.interval, optimizer)
            self.history.append((state.global_step, list(self.active)))
            log.info("LISA step %d: active layers %s", state.global_step, self.active)


def trainable_layer_params(model: nn.Module) -> dict[int, list[torch.nn.Parameter]]:
    """Parameters of each decoder layer, by index (for tests and reports)."""
    return {i: list(layer.parameters()) for i, layer in enumerate(find_layers(model))}


def callback(model: nn.Module, train, seed: int) -> LisaCallback:
    """The LisaCallback of a filled `train:` block (recipes' hook)."""
    from jaflow.train.distributed import filled

    t = filled(train)
    return LisaCallback(model, t["lisa_layers"], t["lisa_interval"], seed, t["lisa_variant"])
