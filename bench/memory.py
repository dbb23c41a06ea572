"""Bytes per rank of parameters, gradients and optimizer state, counted from the tensors.

For each method (LoRA r=16, QLoRA r=16, full, LISA γ=2) the model is built the way jaflow's
recipes hold it on a GPU (compute dtype bf16; full in fp32 masters; LISA through
jaflow.train.lisa.LisaCallback, which casts the active layers, embeddings and head to fp32), one
optimizer step is taken (AdamW, as train.optim's default), and every tensor the rank holds is
counted: parameters (4-bit storage and quantization state for QLoRA), `.grad`s, and the
optimizer's state. Under FSDP (torch's fully_shard, one unit per decoder layer, as
train.distributed.strategy fsdp configures it) each rank counts its own shards.

    python bench/memory.py --quick                 # small real model, 1 process (about a minute)
    python bench/memory.py --size 1b --device meta # ~1.1B Llama shapes, no memory needed
    python bench/memory.py --size 7b --device meta # Llama-2-7B shapes
    torchrun --nproc_per_node 2 bench/memory.py --quick --fsdp     # 2-rank FSDP (gloo on CPU)

On the meta device nothing is computed: gradients are allocated as autograd would (same shape
and dtype as their parameter) and the optimizer step runs on meta tensors, so its state has the
real shapes and dtypes. QLoRA needs real weights to quantize and is measured on real devices only.
Without --fsdp, the figures are DDP's per rank too (DDP keeps a whole copy per process; its
gradient buckets are the `.grad`s themselves).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

SIZES = {  # LlamaConfig shapes
    "quick": dict(
        hidden_size=512,
        intermediate_size=1408,
        num_hidden_layers=8,
        num_attention_heads=8,
        num_key_value_heads=8,
        vocab_size=32000,
    ),
    "1b": dict(
        hidden_size=2048,
        intermediate_size=5632,
        num_hidden_layers=22,
        num_attention_heads=32,
        num_key_value_heads=4,
        vocab_size=32000,
    ),  # TinyLlama-1.1B
    "7b": dict(
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
        vocab_size=32000,
    ),  # Llama-2-7B / Swallow-7B's shape
}
METHODS = ("lora", "qlora", "full", "lisa")
GIB = 1024**3


def tensor_bytes(t) -> int:
    from jaflow.train.distributed import local_bytes

    return local_bytes(t)


def param_bytes(p) -> int:
    n = tensor_bytes(p)
    qs = getattr(p, "quant_state", None)  # bitsandbytes 4-bit: absmax (and nested state)
    if qs is not None:
        for t in (
            qs.absmax,
            getattr(qs, "offset", None),
            getattr(getattr(qs, "state2", None), "absmax", None),
        ):
            n += tensor_bytes(t) if isinstance(t, torch.Tensor) else 0
    return n


def build(size: str, method: str, device: str):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**SIZES[size], max_position_embeddings=256, tie_word_embeddings=False)
    held = torch.float32 if method == "full" else torch.bfloat16
    if method == "qlora":
        if device == "meta":
            return None
        return qlora_model(config)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(held)
    if method == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            model,
            LoraConfig(r=16, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"),
        )
    return model


def qlora_model(config):
    """A real 4-bit model: saved once in bf16, loaded back through BitsAndBytesConfig (nf4)."""
    import tempfile

    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig, LlamaForCausalLM

    with tempfile.TemporaryDirectory() as d:
        LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(d)
        q = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        model = AutoModelForCausalLM.from_pretrained(
            d, quantization_config=q, dtype=torch.bfloat16, device_map={"": "cpu"}
        )
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return get_peft_model(
        model, LoraConfig(r=16, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM")
    )


def shard(model) -> None:
    from torch.distributed.fsdp import fully_shard

    from jaflow.train.lisa import find_layers

    for layer in find_layers(model):
        fully_shard(layer)
    fully_shard(model)


def measure(size: str, method: str, device: str, fsdp: bool) -> dict | None:
    from jaflow.train.lisa import LisaCallback

    torch.manual_seed(0)
    model = build(size, method, device)
    if model is None:
        return None
    if method == "lisa" and fsdp:
        model.float()  # FSDP shards fp32 masters of every layer (jaflow.train.lisa.held_dtype)
    cb = LisaCallback(model, 2, 20, 0) if method == "lisa" else None
    if fsdp:
        shard(model)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    if cb is not None:
        cb._activate(0, opt)  # step 0 of the schedule: 2 layers active, the rest frozen
    if device == "meta":
        for p in model.parameters():
            if p.requires_grad:
                p.grad = torch.empty_like(p)
    else:
        ids = torch.randint(0, model.config.vocab_size, (1, 16))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
    opt.step()
    params = sum(param_bytes(p) for p in model.parameters())
    grads = sum(tensor_bytes(p.grad) for p in model.parameters() if p.grad is not None)
    state = sum(
        tensor_bytes(v)
        for s in opt.state.values()
        for v in s.values()
        if isinstance(v, torch.Tensor)
    )
    n = sum(
        p.numel() if not hasattr(p, "full_tensor") else p.shape.numel() for p in model.parameters()
    )
    return {
        "size": size,
        "method": method,
        "device": device,
        "fsdp": fsdp,
        "params_total": n,
        "param_bytes": params,
        "grad_bytes": grads,
        "optimizer_bytes": state,
        "total_bytes": params + grads + state,
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size", choices=list(SIZES), default="1b")
    ap.add_argument("--device", choices=["cpu", "meta"], default="cpu")
    ap.add_argument("--quick", action="store_true", help="--size quick --device cpu")
    ap.add_argument(
        "--fsdp", action="store_true", help="2-rank FSDP (run under torchrun --nproc_per_node 2)"
    )
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--json", help="also write the rows (rank 0) to this file")
    args = ap.parse_args(argv)
    if args.quick:
        args.size, args.device = "quick", "cpu"
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    rank = 0
    if args.fsdp:
        import torch.distributed as dist

        dist.init_process_group("gloo")
        rank = dist.get_rank()
    rows = [
        r for m in args.methods.split(",") if (r := measure(args.size, m, args.device, args.fsdp))
    ]
    if rank:
        return
    where = f"{'2-rank FSDP, rank 0' if args.fsdp else '1 process (= DDP per rank)'}, {args.device}"
    print(f"# {args.size} Llama ({rows[0]['params_total'] / 1e9:.3f}B params), {where}")
    print(f"{'method':8} {'params GiB':>10} {'grads GiB':>10} {'optim GiB':>10} {'total GiB':>10}")
    for r in rows:
        print(
            f"{r['method']:8} {r['param_bytes'] / GIB:10.3f} {r['grad_bytes'] / GIB:10.3f} "
            f"{r['optimizer_bytes'] / GIB:10.3f} {r['total_bytes'] / GIB:10.3f}"
        )
    by = {r["method"]: r for r in rows}
    if "lisa" in by and "lora" in by:
        print(
            f"LISA/LoRA (total bytes per rank): {by['lisa']['total_bytes'] / by['lora']['total_bytes']:.3f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
