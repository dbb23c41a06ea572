"""Training past one GPU: the `train.distributed` strategy as TrainingArguments, and the
global batch as gradient accumulation.

    ddp        one whole model per process (torch DDP, the Trainer's default)
    fsdp       FSDP2 (`fully_shard`) through the Trainer's and accelerate's own integration:
               parameters, gradients and optimizer state sharded over all processes; one FSDP unit
               per decoder layer; mixed precision (bf16 compute, fp32 sharded masters) from the
               Trainer's `bf16` flag; checkpoints as one consolidated HF state dict
               (FULL_STATE_DICT), so resume and selection read plain HF weights
    deepspeed  DeepSpeed ZeRO stage 2 or 3 through the Trainer's HfDeepSpeedConfig ("auto" values
               filled in by the Trainer from the same TrainingArguments); optional CPU offload of
               optimizer state (and of parameters at stage 3); 16-bit weights gathered on save

Nothing here shards by hand: it only writes the settings the Trainer hands to accelerate.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from jaflow.errors import ConfigError

log = logging.getLogger(__name__)

STRATEGIES = ("ddp", "fsdp", "deepspeed")


def world_size(env: Mapping[str, str] | None = None) -> int:
    """Processes taking part in this run (torchrun's WORLD_SIZE; 1 outside a launch)."""
    env = os.environ if env is None else env
    return int(env.get("WORLD_SIZE", "1"))


def accumulation_steps(train: Mapping[str, Any], world: int) -> int:
    """`train.global_batch_size` ÷ (world × per-device batch), which must divide exactly;
    without a global batch, `train.gradient_accumulation_steps` as given."""
    gbs = train["global_batch_size"]
    if gbs is None:
        return int(train["gradient_accumulation_steps"])
    per = int(train["per_device_train_batch_size"])
    if gbs % (per * world):
        raise ConfigError(
            f"train.global_batch_size: {gbs} is not a multiple of {world} processes x "
            f"train.per_device_train_batch_size {per} (= {per * world}); change one of them"
        )
    return gbs // (per * world)


def decoder_layer_classes(model) -> list[str]:
    """Class names of the decoder blocks (one FSDP unit each): the model's own
    `_no_split_modules`, else the class of its LISA layer list."""
    names = list(getattr(model, "_no_split_modules", None) or [])
    if not names:
        from jaflow.train.lisa import find_layers

        names = sorted({type(m).__name__ for m in find_layers(model)})
    return names


def fsdp_config(dist: Mapping[str, Any], layer_classes: list[str]) -> dict[str, Any]:
    return {
        "version": 2,
        "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
        "transformer_layer_cls_to_wrap": layer_classes,
        "reshard_after_forward": True,
        "cpu_offload": bool(dist["cpu_offload"]),
        "state_dict_type": "FULL_STATE_DICT",
        "cpu_ram_efficient_loading": False,
    }


def deepspeed_config(dist: Mapping[str, Any]) -> dict[str, Any]:
    """A ZeRO config whose numbers the Trainer fills ("auto") from the TrainingArguments."""
    stage = int(dist["zero_stage"])
    zero: dict[str, Any] = {
        "stage": stage,
        "overlap_comm": True,
        "contiguous_gradients": True,
        "reduce_bucket_size": "auto",
    }
    if dist["cpu_offload"]:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
        if stage == 3:
            zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    if stage == 3:
        zero |= {
            "stage3_prefetch_bucket_size": "auto",
            "stage3_param_persistence_threshold": "auto",
            "stage3_gather_16bit_weights_on_model_save": True,
        }
    return {
        "train_micro_batch_size_per_gpu": "auto",
        "train_batch_size": "auto",
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
        "bf16": {"enabled": "auto"},
        "fp16": {"enabled": "auto"},
        "zero_optimization": zero,
        "zero_allow_untested_optimizer": True,  # the Trainer's own AdamW (train.optim)
    }


def check(train: Mapping[str, Any], method: str) -> None:
    """Combinations that cannot work, refused before any model is loaded."""
    dist = train["distributed"]
    strategy = dist["strategy"]
    if strategy not in STRATEGIES:
        raise ConfigError(
            f"train.distributed.strategy: '{strategy}' is not one of {list(STRATEGIES)}"
        )
    if method == "qlora" and strategy == "deepspeed" and int(dist["zero_stage"]) == 3:
        raise ConfigError(
            "train.distributed: qlora with deepspeed zero_stage 3 is not supported by jaflow "
            "(use zero_stage 2 or strategy ddp)"
        )
    if method == "lisa" and strategy == "deepspeed":
        raise ConfigError(
            "train.distributed: lisa with strategy deepspeed is not supported: ZeRO's optimizer "
            "steps its own fp32 partitions of every parameter trainable at start, not the model's "
            "parameters, so LISA's per-layer freezing and dropping of Adam state cannot reach it; "
            "use strategy fsdp (per-parameter shards: frozen layers get no gradient and no state)"
        )
    if method == "qlora" and strategy == "fsdp":
        raise ConfigError(
            "train.distributed: qlora with strategy fsdp is not supported: under FSDP2 (transformers "
            "5.24, accelerate 1.15, bitsandbytes 0.50, 4-bit weights stored in the compute dtype) it "
            "trains, but its loss leaves one process's right after the first checkpoint save "
            "(tests: 5.99 vs 5.72 one step later); use strategy ddp for qlora"
        )


def filled(train: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a `train:` block with the schema's defaults filled (`$defs/train`), for callers
    (tests, bench) that build a TrainJob by hand."""
    from jaflow.config.schema import filled as filled_block

    return filled_block("train", dict(train), "train")


def training_kwargs(train: Mapping[str, Any], method: str, model=None) -> dict[str, Any]:
    """Extra TrainingArguments for `train.distributed` and `train.global_batch_size`."""
    train = filled(train)
    check(train, method)
    dist = train["distributed"]
    kw: dict[str, Any] = {"gradient_accumulation_steps": accumulation_steps(train, world_size())}
    if dist["strategy"] == "fsdp":
        enable_cpu_fsdp()
        if model is None:
            raise ValueError("FSDP needs the model to name its decoder layer classes")
        kw["fsdp"] = True  # full shard, auto wrap and offload come from fsdp_config
        kw["fsdp_config"] = fsdp_config(dist, decoder_layer_classes(model))
        # FSDP's own activation checkpointing replaces the model's (one of them, not both)
        if train["gradient_checkpointing"] and method != "qlora":
            kw["fsdp_config"]["activation_checkpointing"] = True
            kw["activation_checkpointing"] = False
    elif dist["strategy"] == "deepspeed":
        kw["deepspeed"] = deepspeed_config(dist)
    return kw


def batch_layout(train: Mapping[str, Any], args) -> dict[str, Any]:
    """How the global batch is made: recorded in trainer_state.json (stateful_callbacks)."""
    train = filled(train)
    per, accum, world = (
        args.per_device_train_batch_size,
        args.gradient_accumulation_steps,
        args.world_size,
    )
    return {
        "global_batch_size": per * accum * world,
        "world_size": world,
        "per_device_train_batch_size": per,
        "gradient_accumulation_steps": accum,
        "strategy": train["distributed"]["strategy"],
    }


def callbacks(train: Mapping[str, Any], args) -> list:
    """Callbacks the distributed settings add to the Trainer (the batch layout record)."""
    from transformers import TrainerCallback
    from transformers.trainer_callback import ExportableState

    layout = batch_layout(train, args)

    class BatchLayout(TrainerCallback, ExportableState):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            if model is not None and "sharded_parameters" not in layout:  # what this rank holds
                layout["sharded_parameters"] = sum(is_sharded(p) for p in model.parameters())
                layout["parameter_bytes_rank0"] = sum(local_bytes(p) for p in model.parameters())

        def state(self) -> dict[str, Any]:
            return {"args": dict(layout), "attributes": {}}

    return [BatchLayout()]


def is_sharded(t) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(t, DTensor)


def local_bytes(t) -> int:
    """Bytes this rank stores for `t` (its shard, for an FSDP2 DTensor)."""
    if t is None:
        return 0
    if hasattr(t, "ds_tensor"):  # a DeepSpeed ZeRO-3 parameter: this rank's partition
        t = t.ds_tensor
    elif is_sharded(t):
        t = t.to_local()
    return t.numel() * t.element_size()


_CPU_FSDP = False


def enable_cpu_fsdp() -> None:
    """Let accelerate's FSDP2 path run on CPU processes (gloo), as torch's `fully_shard` does.

    accelerate 1.15 turns an `fsdp_plugin` into DistributedType.FSDP only for accelerator
    process groups (MULTI_GPU, MULTI_XPU, ...) and silently runs MULTI_CPU as plain DDP. On a
    machine without CUDA this makes the same switch for MULTI_CPU after AcceleratorState is built;
    everything after it (fully_shard, mixed precision, FULL_STATE_DICT saving) is accelerate's
    and torch's own code. No effect with CUDA."""
    global _CPU_FSDP
    import torch

    if _CPU_FSDP or torch.cuda.is_available():
        return
    from accelerate.state import AcceleratorState, PartialState
    from accelerate.utils import DistributedType

    original = AcceleratorState.__init__

    def init(self, *args, fsdp_plugin=None, **kwargs):
        original(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
        plugin = fsdp_plugin or getattr(self, "fsdp_plugin", None)
        if plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
            if fsdp_plugin is not None and self._mixed_precision != "no":
                fsdp_plugin.set_mixed_precision(self._mixed_precision)
            self.fsdp_plugin = plugin
            # AcceleratorState re-reads PartialState's type each time it is built: switch both
            self.distributed_type = DistributedType.FSDP
            PartialState._shared_state["distributed_type"] = DistributedType.FSDP

    AcceleratorState.__init__ = init
    _CPU_FSDP = True


def job_resources(train: Mapping[str, Any]) -> dict[str, int]:
    """The train rule's Slurm resources from `train.distributed`: GPUs in all, and nodes."""
    dist = filled(train)["distributed"]
    return {"gpu": int(dist["nodes"]) * int(dist["gpus_per_node"]), "nodes": int(dist["nodes"])}
