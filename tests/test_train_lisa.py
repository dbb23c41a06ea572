"""LISA: only the sampled layers (+ embeddings and head) change, they do change, every layer is
in the optimizer (LMFlow#726), and a re-activated layer starts with fresh Adam moments
(LMFlow#729/#768). On a dense Llama and a Mixtral-style MoE."""

from __future__ import annotations

import pytest
import torch
from train_world import build_mixtral, make_job, train_world  # noqa: F401  (fixture)
from transformers import TrainerCallback

from jaflow.train import lisa
from jaflow.train.recipes import build_trainer, write_outputs

INTERVAL, N_LAYERS, N_ACTIVE = 2, 4, 1


def comeback_seed() -> tuple[int, int]:
    """A seed whose schedule activates some layer in period 0, drops it in 1, brings it back in 2."""
    for seed in range(1000):
        p = [lisa.sample_layers(N_LAYERS, N_ACTIVE, seed, k) for k in range(3)]
        for layer in p[0]:
            if layer not in p[1] and layer in p[2]:
                return seed, layer
    raise AssertionError("no seed found")


class Recorder(TrainerCallback):
    """Snapshots weights and optimizer state around every optimizer step."""

    def __init__(self, model, lisa_cb):
        self.model, self.lisa_cb = model, lisa_cb
        self.layers = lisa.find_layers(model)
        self.steps = []
        self.registered = None

    def _named(self):
        return {n: p.detach().clone() for n, p in self.model.named_parameters()}

    def on_train_begin(self, args, state, control, optimizer=None, **kwargs):
        self.registered = {id(p) for g in optimizer.param_groups for p in g["params"]}

    def on_step_begin(self, args, state, control, optimizer=None, **kwargs):
        self._before = self._named()
        self._state_layers = {
            i
            for i, layer in enumerate(self.layers)
            if any(p in optimizer.state for p in layer.parameters())
        }

    def on_step_end(self, args, state, control, optimizer=None, **kwargs):
        after = self._named()
        changed = {n for n in after if not torch.equal(after[n], self._before[n])}
        adam_steps = {
            i: [
                float(optimizer.state[p]["step"])
                for p in layer.parameters()
                if p in optimizer.state
            ]
            for i, layer in enumerate(self.layers)
        }
        self.steps.append(
            {
                "step": state.global_step,
                "active": list(self.lisa_cb.active),
                "changed": changed,
                "state_layers_before": self._state_layers,
                "adam_steps": adam_steps,
            }
        )


def layer_of(name: str) -> int | None:
    parts = name.split(".")
    return int(parts[parts.index("layers") + 1]) if "layers" in parts else None


@pytest.mark.parametrize("arch", ["llama", "mixtral"])
def test_lisa_trains_only_sampled_layers_with_fresh_moments(arch, train_world, tmp_path):  # noqa: F811
    seed, comeback = comeback_seed()
    model_dir = (
        train_world["llama"]
        if arch == "llama"
        else build_mixtral(train_world["tokenizer"], tmp_path / "mixtral", num_layers=N_LAYERS)
    )
    job = make_job(
        train_world,
        tmp_path / "lisa",
        "lisa",
        model_dir=model_dir,
        max_steps=3 * INTERVAL,
        eval_steps=100,
        lisa_layers=N_ACTIVE,
        lisa_interval=INTERVAL,
        weight_decay=0.1,
        seed=seed,
    )
    trainer = build_trainer(job)
    lisa_cb = next(
        c for c in trainer.callback_handler.callbacks if isinstance(c, lisa.LisaCallback)
    )
    rec = Recorder(trainer.model, lisa_cb)
    trainer.add_callback(rec)
    trainer.train()

    # LMFlow#726: every decoder layer was registered with the optimizer when it was built
    layer_params = [p for layer in rec.layers for p in layer.parameters()]
    assert layer_params and all(id(p) in rec.registered for p in layer_params)

    assert [s["active"] for s in rec.steps[::INTERVAL]] == [
        lisa.sample_layers(N_LAYERS, N_ACTIVE, seed, k) for k in range(3)
    ]
    for s in rec.steps:
        touched = {layer_of(n) for n in s["changed"]} - {None}
        assert touched == set(s["active"]), s[
            "step"
        ]  # frozen layers unchanged, even with weight decay
        assert any("embed_tokens" in n for n in s["changed"]) and any(
            "lm_head" in n for n in s["changed"]
        )
    # after a switch, deactivated layers hold no optimizer state
    switch = rec.steps[INTERVAL]
    assert switch["state_layers_before"] <= set(switch["active"])
    # the layer that comes back in period 2 restarts its moments: Adam's step count is 1, not 3
    back = rec.steps[2 * INTERVAL]
    assert comeback in back["active"] and comeback in rec.steps[0]["active"]
    assert back["adam_steps"][comeback] and set(back["adam_steps"][comeback]) == {1.0}
    # a layer kept across steps of one period accumulates them
    assert set(rec.steps[2 * INTERVAL + 1]["adam_steps"][comeback]) == {2.0}

    write_outputs(job, trainer)  # lisa_layers.csv: the layers each period really trained
    lines = (tmp_path / "lisa" / "lisa_layers.csv").read_text().splitlines()
    assert lines == ["step,active_layers"] + [
        f"{s['step'] - 1},{' '.join(map(str, s['active']))}" for s in rec.steps[::INTERVAL]
    ]


@pytest.mark.parametrize("arch", ["llama", "mistral", "mixtral", "gpt_neox"])
def test_find_layers(arch, train_world, tmp_path):  # noqa: F811
    from transformers import AutoModelForCausalLM

    if arch == "mixtral":
        d = build_mixtral(train_world["tokenizer"], tmp_path / arch, num_layers=3)
    else:
        d = train_world["tiny_model"](arch)
    model = AutoModelForCausalLM.from_pretrained(d)
    layers = lisa.find_layers(model)
    assert len(layers) == model.config.num_hidden_layers
    inner = model.gpt_neox.layers if arch == "gpt_neox" else model.model.layers
    assert layers is inner


def test_schedule_is_seeded_and_uniform():
    a = lisa.schedule(32, 8, 13, seed=4, max_steps=1000)
    assert a == lisa.schedule(32, 8, 13, seed=4, max_steps=1000)
    assert [s for s, _ in a[:3]] == [0, 13, 26] and all(len(set(x)) == 8 for _, x in a)
    counts = torch.zeros(32)
    for k in range(2000):
        counts[lisa.sample_layers(32, 8, 0, k)] += 1
    assert (counts / 2000 - 0.25).abs().max() < 0.04  # each layer active ~γ/L of the time


class DtypeRecorder(TrainerCallback):
    """Per step: dtype and gradient of every decoder layer, which parameters hold Adam state."""

    def __init__(self, model, lisa_cb):
        self.model, self.lisa_cb, self.steps = model, lisa_cb, []

    def on_pre_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
        layers = lisa.find_layers(self.model)
        self._grads = {
            i: {p.grad is not None for p in layer.parameters()} for i, layer in enumerate(layers)
        }

    def on_step_end(self, args, state, control, optimizer=None, **kwargs):
        layers = lisa.find_layers(self.model)
        self.steps.append(
            {
                "active": list(self.lisa_cb.active),
                "dtypes": {
                    i: {p.dtype for p in layer.parameters()} for i, layer in enumerate(layers)
                },
                "grads": self._grads,
                "state_layers": {
                    i
                    for i, layer in enumerate(layers)
                    if any(p in optimizer.state for p in layer.parameters())
                },
                "always_dtypes": {p.dtype for p in self.lisa_cb.always},
            }
        )


def test_lean_lisa_holds_frozen_layers_in_compute_dtype(train_world, tmp_path):  # noqa: F811
    """bf16 held model (autocast on CPU): fp32 masters, gradients and Adam state only for the
    active layers + embeddings/norm/head; a switched-out layer goes back to bf16 without state."""
    seed, _ = comeback_seed()
    job = make_job(
        train_world,
        tmp_path / "lean",
        "lisa",
        max_steps=2 * INTERVAL,
        eval_steps=100,
        lisa_layers=N_ACTIVE,
        lisa_interval=INTERVAL,
        seed=seed,
        compute_dtype="bfloat16",
        precision="bf16",
        logging_steps=1,
    )
    trainer = build_trainer(job)
    lisa_cb = next(
        c for c in trainer.callback_handler.callbacks if isinstance(c, lisa.LisaCallback)
    )
    rec = DtypeRecorder(trainer.model, lisa_cb)
    trainer.add_callback(rec)
    trainer.train()
    assert len(rec.steps) == 2 * INTERVAL
    for s in rec.steps:
        for i in range(N_LAYERS):
            on = i in s["active"]
            assert s["dtypes"][i] == ({torch.float32} if on else {torch.bfloat16}), (i, s)
            assert s["grads"][i] == {on}, (i, s)
        assert s["state_layers"] == set(s["active"])
        assert s["always_dtypes"] == {torch.float32}
    assert rec.steps[0]["active"] != rec.steps[INTERVAL]["active"]  # a real switch happened
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert losses and all(x == x for x in losses)  # finite, it trained


class Registered(TrainerCallback):
    def on_train_begin(self, args, state, control, optimizer=None, **kwargs):
        self.ids = {id(p) for g in optimizer.param_groups for p in g["params"]}


def test_lmflow_variant_reproduces_lmflow_726(train_world, tmp_path):  # noqa: F811
    """lisa_variant lmflow: layers frozen before the optimizer exists, so no decoder layer is in
    the optimizer or ever changes, and the loss curve is (nearly) the same for γ = 1 and γ = 3."""
    curves = []
    for gamma in (1, 3):
        job = make_job(
            train_world,
            tmp_path / f"lmflow{gamma}",
            "lisa",
            max_steps=4,
            eval_steps=100,
            logging_steps=1,
            lisa_layers=gamma,
            lisa_interval=2,
            lisa_variant="lmflow",
            max_grad_norm=1e9,
        )
        trainer = build_trainer(job)
        layers = lisa.find_layers(trainer.model)
        before = {n: p.detach().clone() for n, p in layers.named_parameters()}
        rec = Registered()
        trainer.add_callback(rec)
        trainer.train()
        registered = rec.ids
        assert not {id(p) for p in layers.parameters()} & registered
        assert all(torch.equal(before[n], p) for n, p in layers.named_parameters())
        emb = trainer.model.get_input_embeddings().weight
        assert id(emb) in registered
        curves.append([e["loss"] for e in trainer.state.log_history if "loss" in e])
    # The sampled layers still get gradients; they would only enter through the gradient-norm
    # clip, switched off here (max_grad_norm 1e9), so nothing of γ reaches the weights.
    assert len(curves[0]) == 4 and curves[0][0] - curves[0][-1] > 0.1
    assert max(abs(a - b) for a, b in zip(*curves, strict=True)) < 1e-6, curves
