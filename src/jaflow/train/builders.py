"""Small builders the recipes are made of: tokenizer, quantization config, model, LoRA, args.

`model_args` is what the model graph gives (`graph.hf_args`): pretrained, peft, tokenizer,
use_fast, trust_remote_code, dtype. `train` is a `train:` block of the config (schema
`$defs/train`, defaults filled).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, BitsAndBytesConfig, TrainingArguments

from jaflow.errors import ConfigError
from jaflow.hf import DTYPES, load_tokenizer  # noqa: F401 (load_tokenizer is a builder the recipes use)

log = logging.getLogger(__name__)

def has_cuda() -> bool:
    return torch.cuda.is_available()


def compute_dtype(name: str = "auto") -> torch.dtype:
    """`auto`: bf16 on a GPU that has it, fp32 on CPU (bnb's CPU kernels, exact resume tests)."""
    if name != "auto":
        return DTYPES[name]
    if has_cuda():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def build_quant_config(train: dict[str, Any]) -> BitsAndBytesConfig:
    """QLoRA's 4-bit (nf4, double quant) or 8-bit config, on today's API."""
    if train.get("bits", 4) == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=train.get("quant_type", "nf4"),
        bnb_4bit_use_double_quant=train.get("double_quant", True),
        bnb_4bit_compute_dtype=compute_dtype(train.get("compute_dtype", "auto")),
    )


def _device_map() -> dict[str, Any] | None:
    """One whole model per process (DDP), on its own GPU; None on CPU."""
    if not has_cuda():
        return None
    import os

    return {"": int(os.environ.get("LOCAL_RANK", 0))}


def load_model(model_args: dict[str, Any], method: str, train: dict[str, Any]):
    """The starting model for `method`: 4-bit for qlora, compute dtype for lora, fp32 masters
    for full and lisa (mixed precision comes from the Trainer)."""
    if model_args.get("peft"):
        raise ConfigError(
            f"training from an adapter ({model_args['peft']}): set select.merge_adapter: true on the "
            "model it comes from, so it is saved with full weights"
        )
    kwargs: dict[str, Any] = {"trust_remote_code": model_args.get("trust_remote_code", False)}
    if method == "qlora":
        kwargs["quantization_config"] = build_quant_config(train)
        kwargs["dtype"] = compute_dtype(train.get("compute_dtype", "auto"))
        kwargs["device_map"] = _device_map() or {"": "cpu"}
    elif method == "lora":
        kwargs["dtype"] = compute_dtype(train.get("compute_dtype", "auto"))
    elif method == "lisa":  # jaflow-dist hook: compute dtype, fp32 masters only for what trains
        from jaflow.train import distributed, lisa

        compute = compute_dtype(train.get("compute_dtype", "auto"))
        kwargs["dtype"] = lisa.held_dtype(distributed.filled(train), compute, distributed.world_size())
    else:
        kwargs["dtype"] = torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_args["pretrained"], **kwargs)
    model.config.use_cache = False
    return model


def apply_lora(model, method: str, train: dict[str, Any]):
    """Wrap `model` in a peft LoRA (after `prepare_model_for_kbit_training` for qlora)."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if method == "qlora":
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=train.get("gradient_checkpointing", True),
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    targets = train.get("target_modules", "all-linear")
    config = LoraConfig(
        r=train.get("lora_r", 64),
        lora_alpha=train.get("lora_alpha", 16),
        lora_dropout=train.get("lora_dropout", 0.05),
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )
    try:
        model = get_peft_model(model, config)
    except ValueError as e:
        raise ConfigError(f"train.target_modules: {targets!r} do not match the model ({e})") from None
    if method == "lora" and train.get("gradient_checkpointing", True):
        model.enable_input_require_grads()  # checkpointed LoRA needs grads flowing into the input
    return model


def precision_flags(train: dict[str, Any], method: str) -> dict[str, bool]:
    """bf16/fp16 autocast flags for the Trainer; `auto` is none on CPU."""
    p = train.get("precision", "auto")
    if p == "auto":
        p = "fp32" if not has_cuda() else ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    return {"bf16": p == "bf16", "fp16": p == "fp16"}


def training_arguments(
    train: dict[str, Any], method: str, output_dir: str | Path, seed: int, select_metric: str = "eval_loss",
    **extra: Any,
) -> TrainingArguments:
    """TrainingArguments from a `train:` block: evaluate and save every `eval_steps`; `extra`
    (jaflow-dist hook: jaflow.train.distributed.training_kwargs) wins over the block's settings."""
    report_to = list(train.get("report_to") or []) or "none"
    best = {"metric_for_best_model": "eval_loss", "greater_is_better": False} if select_metric == "eval_loss" else {}
    kwargs = dict(
        output_dir=str(output_dir),
        max_steps=train.get("max_steps", 1000),
        num_train_epochs=train.get("num_train_epochs", 1),
        per_device_train_batch_size=train.get("per_device_train_batch_size", 8),
        per_device_eval_batch_size=train.get("per_device_eval_batch_size", 16),
        gradient_accumulation_steps=train.get("gradient_accumulation_steps", 2),
        learning_rate=train.get("learning_rate", 2e-4),
        lr_scheduler_type=train.get("lr_scheduler_type", "constant"),
        warmup_steps=train.get("warmup_ratio", 0.03),  # a float < 1 is a ratio in transformers 5
        adam_beta1=train.get("adam_beta1", 0.9),
        adam_beta2=train.get("adam_beta2", 0.999),
        max_grad_norm=train.get("max_grad_norm", 0.3),
        weight_decay=train.get("weight_decay", 0.0),
        optim=train.get("optim", "adamw_torch"),
        # qlora's checkpointing is switched on by prepare_model_for_kbit_training
        activation_checkpointing=train.get("gradient_checkpointing", True) and method != "qlora",
        activation_checkpointing_kwargs={"use_reentrant": False},
        eval_strategy="steps",
        eval_steps=train.get("eval_steps", 50),
        save_strategy="steps",
        save_steps=train.get("eval_steps", 50),
        save_total_limit=train.get("save_total_limit"),
        logging_steps=train.get("logging_steps", 10),
        train_sampling_strategy="group_by_length" if train.get("group_by_length") else "random",
        include_num_input_tokens_seen="non_padding",
        remove_unused_columns=False,
        report_to=report_to,
        seed=seed,
        data_seed=seed,
        use_cpu=not has_cuda(),
        ddp_find_unused_parameters=False,
        dataloader_num_workers=0,
        **best,
        **precision_flags(train, method),
    )
    return TrainingArguments(**(kwargs | extra))
