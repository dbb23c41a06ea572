"""LISA (arXiv 2403.17919): embeddings and LM head always train; every K steps a fresh uniform
sample of γ decoder layers trains and the other layers are frozen.

Two known ways to get this wrong, both avoided here:
- LMFlow#726: freezing before the optimizer is built, so the Trainer never registers the layers.
  Here every parameter is trainable when the optimizer is created; freezing first happens in
  `on_step_begin` of step 0.
- LMFlow#729/#768: keeping the Adam moments of a deactivated layer and reusing them stale when it
  comes back. Here a deactivated layer's optimizer state is dropped (as BAdam does), so a
  re-activated layer starts with fresh moments.

The sample of period p is a pure function of (seed, p), so a resumed run trains the same layers.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn
from transformers import TrainerCallback

from jaflow.errors import ConfigError

log = logging.getLogger(__name__)


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


class LisaCallback(TrainerCallback):
    """Switch the active layers every `interval` optimizer steps; drop stale optimizer state."""

    def __init__(self, model: nn.Module, n_active: int, interval: int, seed: int):
        self.layers = find_layers(model)
        self.n_active = n_active
        self.interval = interval
        self.seed = seed
        self.active: list[int] = []
        self.history: list[tuple[int, list[int]]] = []

    def _activate(self, period: int, optimizer=None) -> None:
        new = sample_layers(len(self.layers), self.n_active, self.seed, period)
        for i, layer in enumerate(self.layers):
            on = i in new
            for p in layer.parameters():
                p.requires_grad_(on)
                if not on and optimizer is not None:
                    optimizer.state.pop(p, None)
        self.active = new

    def on_train_begin(self, args, state, control, optimizer=None, **kwargs):
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

    def on_step_begin(self, args, state, control, optimizer=None, **kwargs):
        if state.global_step % self.interval == 0:
            self._activate(state.global_step // self.interval, optimizer)
            self.history.append((state.global_step, list(self.active)))
            log.info("LISA step %d: active layers %s", state.global_step, self.active)


def trainable_layer_params(model: nn.Module) -> dict[int, list[torch.nn.Parameter]]:
    """Parameters of each decoder layer, by index (for tests and reports)."""
    return {i: list(layer.parameters()) for i, layer in enumerate(find_layers(model))}
