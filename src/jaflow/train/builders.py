"""Small builders the recipes are made of: tokenizer, quantization config, model, LoRA, args.

`model_args` is what the model graph gives (`graph.hf_args`): pretrained, peft, tokenizer,
use_fast, trust_remote_code, dtype. `train` is a `train:` block of the config (schema
`$defs/train`, defaults filled). torch, transformers and peft are imported where they are used,
so importing this module costs nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from functools import cache
from pathlib import Path
from typing import Any

from jaflow.errors import ConfigError

log = logging.getLogger(__name__)


def load_tokenizer(model_args: dict[str, Any]):
    from jaflow.hf import load_tokenizer as load

    return load(model_args)


def has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def compute_dtype(name: str):
    """`auto`: bf16 on a GPU that has it, fp32 on CPU (bnb's CPU kernels, exact resume tests)."""
    import torch

    if name != "auto":
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[
            name
        ]
    if has_cuda():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def build_quant_config(train: dict[str, Any]):
    """QLoRA's 4-bit (nf4, double quant) or 8-bit config, on today's API."""
    from transformers import BitsAndBytesConfig

    if train["bits"] == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=train["quant_type"],
        bnb_4bit_use_double_quant=train["double_quant"],
        bnb_4bit_compute_dtype=compute_dtype(train["compute_dtype"]),
    )


def _device_map() -> dict[str, Any] | None:
    """One whole model per process (DDP), on its own GPU; None on CPU."""
    if not has_cuda():
        return None
    return {"": int(os.environ.get("LOCAL_RANK", 0))}


def freeze_4bit_layout(model) -> int:
    """Keep bitsandbytes' 4-bit weights in the layout they were quantized in.

    On a CPU with AVX512-BF16, `Linear4bit.forward` outside training (i.e. at every evaluation)
    repacks the weight in place and rounds its absmax scales to bfloat16; saving a checkpoint
    re-quantizes them. From the first evaluation on, an uninterrupted run then trains a slightly
    different base than the one a resumed run loads from disk: QLoRA's resume drift (losses up
    to 2e-4 off, different final weights). It also fails on layers whose width is not a multiple
    of 32 (`N must be divisible by block_n`). Switching the repacking off makes evaluation use
    the same kernels and scales as training. Returns the number of layers changed.
    """
    n = 0
    for module in model.modules():
        if getattr(module, "support_avx512bf16_for_cpu", False):
            module.support_avx512bf16_for_cpu = False
            n += 1
    return n


def load_model(model_args: dict[str, Any], method: str, train: dict[str, Any]):
    """The starting model for `method`: 4-bit for qlora, compute dtype for lora, fp32 masters
    for full and lisa (mixed precision comes from the Trainer)."""
    import torch
    from transformers import AutoModelForCausalLM

    if model_args.get("peft"):
        raise ConfigError(
            f"training from an adapter ({model_args['peft']}): set select.merge_adapter: true on the "
            "model it comes from, so it is saved with full weights"
        )
    attn = train["attn_implementation"]
    if attn == "flash_attention_2" and not has_cuda():
        raise ConfigError(
            "train.attn_implementation: flash_attention_2 needs a GPU; use sdpa on CPU"
        )
    kwargs: dict[str, Any] = {
        "trust_remote_code": model_args["trust_remote_code"],
        "attn_implementation": attn,
    }
    if method == "qlora":
        kwargs["quantization_config"] = build_quant_config(train)
        kwargs["dtype"] = compute_dtype(train["compute_dtype"])
        kwargs["device_map"] = _device_map() or {"": "cpu"}
    elif method == "lora":
        kwargs["dtype"] = compute_dtype(train["compute_dtype"])
    elif method == "lisa":  # jaflow-dist hook: compute dtype, fp32 masters only for what trains
        from jaflow.train import distributed, lisa

        compute = compute_dtype(train["compute_dtype"])
        kwargs["dtype"] = lisa.held_dtype(
            distributed.filled(train), compute, distributed.world_size()
        )
    else:
        kwargs["dtype"] = torch.float32
    model = AutoModelForCausalLM.from_pretrained(
        model_args["pretrained"], revision=model_args.get("revision"), **kwargs
    )
    model.config.use_cache = False
    if method == "qlora":
        freeze_4bit_layout(model)
    return model


def apply_lora(model, method: str, train: dict[str, Any]):
    """Wrap `model` in a peft LoRA (after `prepare_model_for_kbit_training` for qlora)."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if method == "qlora":
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=train["gradient_checkpointing"],
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    targets = train["target_modules"]
    config = LoraConfig(
        r=train["lora_r"],
        lora_alpha=train["lora_alpha"],
        lora_dropout=train["lora_dropout"],
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )
    try:
        model = get_peft_model(model, config)
    except ValueError as e:
        raise ConfigError(
            f"train.target_modules: {targets!r} do not match the model ({e})"
        ) from None
    if method == "lora" and train["gradient_checkpointing"]:
        model.enable_input_require_grads()  # checkpointed LoRA needs grads flowing into the input
    return model


def precision_flags(train: dict[str, Any]) -> dict[str, bool]:
    """bf16/fp16 autocast flags for the Trainer; `auto` is none on CPU."""
    p = train["precision"]
    if p == "auto":
        import torch

        p = "fp32" if not has_cuda() else ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    return {"bf16": p == "bf16", "fp16": p == "fp16"}


@cache
def _argument_names() -> frozenset[str]:
    from transformers import TrainingArguments

    return frozenset(f.name for f in dataclasses.fields(TrainingArguments))


def version_dependent_arguments(train: dict[str, Any], method: str) -> dict[str, Any]:
    """Arguments transformers renamed within 5.x: activation checkpointing (`gradient_checkpointing`
    before 5.2x) and length grouping (`group_by_length` before `train_sampling_strategy`)."""
    names = _argument_names()
    # qlora's checkpointing is switched on by prepare_model_for_kbit_training
    ckpt = train["gradient_checkpointing"] and method != "qlora"
    out: dict[str, Any] = {}
    if "activation_checkpointing" in names:
        out |= {
            "activation_checkpointing": ckpt,
            "activation_checkpointing_kwargs": {"use_reentrant": False},
        }
    else:
        out |= {
            "gradient_checkpointing": ckpt,
            "gradient_checkpointing_kwargs": {"use_reentrant": False},
        }
    if "train_sampling_strategy" in names:
        out["train_sampling_strategy"] = "group_by_length" if train["group_by_length"] else "random"
    else:
        out["group_by_length"] = train["group_by_length"]
    return out


def save_total_limit(train: dict[str, Any], select_metric: str) -> int | None:
    """The Trainer keeps the best checkpoint by eval_loss and the most recent ones; a downstream
    metric scores every checkpoint after training, so all are kept."""
    if select_metric != "eval_loss":
        if train["save_total_limit"] is not None:
            log.info(
                "select.metric %s scores every checkpoint: keeping all (train.save_total_limit "
                "applies to eval_loss selection)",
                select_metric,
            )
        return None
    return train["save_total_limit"]


def training_arguments(
    train: dict[str, Any],
    method: str,
    output_dir: str | Path,
    seed: int,
    select_metric: str = "eval_loss",
    **extra: Any,
):
    """TrainingArguments from a `train:` block: evaluate and save every `eval_steps`; `extra`
    (jaflow.train.distributed.training_kwargs) wins over the block's settings."""
    from transformers import TrainingArguments

    if train["liger_kernel"] and not has_cuda():
        raise ConfigError(
            "train.liger_kernel: Liger kernels need a GPU (Triton); set it to false on CPU"
        )
    report_to = list(train["report_to"]) or "none"
    best = (
        {"metric_for_best_model": "eval_loss", "greater_is_better": False}
        if select_metric == "eval_loss"
        else {}
    )
    liger = {"use_liger_kernel": True} if train["liger_kernel"] else {}
    kwargs = dict(
        output_dir=str(output_dir),
        max_steps=train["max_steps"],
        num_train_epochs=train["num_train_epochs"],
        per_device_train_batch_size=train["per_device_train_batch_size"],
        per_device_eval_batch_size=train["per_device_eval_batch_size"],
        gradient_accumulation_steps=train["gradient_accumulation_steps"],
        learning_rate=train["learning_rate"],
        lr_scheduler_type=train["lr_scheduler_type"],
        warmup_steps=train["warmup_ratio"],  # a float < 1 is a ratio in transformers 5
        adam_beta1=train["adam_beta1"],
        adam_beta2=train["adam_beta2"],
        max_grad_norm=train["max_grad_norm"],
        weight_decay=train["weight_decay"],
        optim=train["optim"],
        eval_strategy="steps",
        eval_steps=train["eval_steps"],
        save_strategy="steps",
        save_steps=train["eval_steps"],
        save_total_limit=save_total_limit(train, select_metric),
        logging_steps=train["logging_steps"],
        # a packed batch has no padding (and no attention_mask to count it by)
        include_num_input_tokens_seen="all" if train["packing"] else "non_padding",
        remove_unused_columns=False,
        report_to=report_to,
        seed=seed,
        data_seed=seed,
        use_cpu=not has_cuda(),
        ddp_find_unused_parameters=method == "lisa",  # lisa: frozen layers get no gradient
        dataloader_num_workers=0,
        **version_dependent_arguments(train, method),
        **best,
        **liger,
        **precision_flags(train),
    )
    return TrainingArguments(**(kwargs | extra))
