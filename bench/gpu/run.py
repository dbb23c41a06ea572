"""The GPU run: jaflow vs qlora.py-style vs TRL SFTTrainer on a 7B-shaped model, in under 10 min.

On one lent H200 (bench/gpu/run.sh sets it up; wheels from bench/gpu/fetch_wheels.sh):

- tokens/s for QLoRA and LoRA at equal batch (8 x accumulation 2), rows of a few hundred to
  2,048 tokens, a random-init bf16 Llama-2-7B-shaped model (the same like-for-like rules as
  bench/train_throughput.py: same rows, order, steps, optimizer; loss curves side by side);
  jaflow also with packing (padding-free; FlashAttention varlen when flash-attn is installed,
  else sdpa with the block-diagonal mask), and with Liger kernels when liger-kernel is installed;
- MFU at 4N FLOPs per token (frozen base) against the given peak;
- LISA (gamma = 2 layers) vs LoRA peak GPU memory at the same batch;
- evaluation speed of JGLUE-style multiple-choice log-likelihood requests: HF forward in
  batches vs vLLM prompt log-probs, where vLLM is installed.

Every configuration has a time allowance; what does not fit in `--budget-s` is reported as
skipped, and the JSON is rewritten after each one (so a killed run still leaves its numbers).

    python bench/gpu/run.py --out $OUT/gpu.json            # on the H200
    python bench/gpu/run.py --size tiny --steps 3 --out /tmp/gpu.json   # a CPU dry run of every path
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import train_throughput as tt  # noqa: E402


def installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def peak_memory_run(fn) -> dict:
    import gc

    import torch

    gc.collect()  # the previous configuration's model and optimizer
    if tt.has_cuda():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    row = fn()
    if tt.has_cuda():
        row["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return row


def eval_speed(model_dir: Path, n_requests: int, batch: int) -> dict:
    """JCommonsenseQA-shaped requests (a ~120-token context, 5 short choices): log-likelihood of
    each choice, by HF forward passes in batches, and by vLLM's prompt log-probs if installed."""
    import random

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    rng = random.Random(0)
    vocab = list(range(10, len(tok)))
    reqs = [
        [rng.choice(vocab) for _ in range(120)] + [rng.choice(vocab) for _ in range(4)]
        for _ in range(n_requests)
    ]
    out: dict = {"requests": n_requests}
    dtype = torch.bfloat16 if tt.has_cuda() else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(
        "cuda" if tt.has_cuda() else "cpu"
    )
    model.eval()
    dev = next(model.parameters()).device
    with torch.no_grad():
        model(torch.tensor([reqs[0]], device=dev))  # warm-up
        if tt.has_cuda():
            torch.cuda.synchronize()
        t = time.perf_counter()
        for i in range(0, n_requests, batch):
            ids = torch.tensor(reqs[i : i + batch], device=dev)
            logp = torch.log_softmax(model(ids).logits[:, -5:-1].float(), -1)
            logp.gather(-1, ids[:, -4:, None]).sum()
        if tt.has_cuda():
            torch.cuda.synchronize()
        out["hf_requests_per_s"] = n_requests / (time.perf_counter() - t)
    del model
    if tt.has_cuda():
        torch.cuda.empty_cache()
    if installed("vllm") and tt.has_cuda():
        from vllm import LLM, SamplingParams

        llm = LLM(str(model_dir), dtype="bfloat16", gpu_memory_utilization=0.5, enforce_eager=True)
        params = SamplingParams(max_tokens=1, prompt_logprobs=0)
        prompts = [{"prompt_token_ids": r} for r in reqs]
        llm.generate(prompts[:4], params)
        t = time.perf_counter()
        llm.generate(prompts, params)
        out["vllm_requests_per_s"] = n_requests / (time.perf_counter() - t)
    else:
        out["vllm"] = "not installed" if not installed("vllm") else "needs a GPU"
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", choices=sorted(tt.SIZES), default="7b")
    p.add_argument(
        "--steps", type=int, default=4, help="optimizer steps per configuration (first is warm-up)"
    )
    p.add_argument("--rows", type=int, default=160)
    p.add_argument(
        "--scale",
        type=float,
        default=2.5,
        help="row lengths x this (2.5: median ~750 tokens, cap 2,048)",
    )
    p.add_argument(
        "--peak-tflops",
        type=float,
        default=989.0,
        help="H100/H200 bf16 dense peak (measured matmul: ~790)",
    )
    p.add_argument(
        "--budget-s", type=float, default=540.0, help="stop starting new configurations after this"
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument(
        "--only", default=None, help="run only the configurations whose name starts with this"
    )
    p.add_argument("--no-eval-speed", action="store_true")
    a = p.parse_args(argv)
    import torch
    from transformers import AutoConfig

    start = time.perf_counter()
    report: dict = {
        "device": torch.cuda.get_device_name() if tt.has_cuda() else "CPU",
        "size": a.size,
        "steps": a.steps,
        "torch": torch.__version__,
        "runs": {},
        "skipped": [],
        "errors": {},
    }
    for lib in (
        "transformers",
        "peft",
        "bitsandbytes",
        "trl",
        "flash_attn",
        "liger_kernel",
        "vllm",
    ):
        if installed(lib):
            report.setdefault("versions", {})[lib] = getattr(__import__(lib), "__version__", "?")

    def save():
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(report, indent=2, default=str))

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        model_dir, data_dir = tt.make_world(root, a.size, a.rows, seed=0, scale=a.scale, n_val=16)
        report["world_s"] = time.perf_counter() - t
        n = tt.matmul_params(AutoConfig.from_pretrained(model_dir))
        report["matmul_params"] = n
        flash = installed("flash_attn") and tt.has_cuda()
        configs = {}
        for method in ("qlora", "lora"):
            configs[f"{method} qlora.py-style"] = lambda m=method: tt.run_qlora_py(
                model_dir, data_dir, root / "q", a.steps, m
            )
            configs[f"{method} SFTTrainer"] = lambda m=method: tt.run_sft(
                model_dir, data_dir, root / "s", a.steps, m
            )
            configs[f"{method} jaflow"] = lambda m=method: tt.run_jaflow(
                model_dir, data_dir, root / "j", a.steps, False, m
            )
            configs[f"{method} jaflow packing"] = lambda m=method: tt.run_jaflow(
                model_dir,
                data_dir,
                root / "p",
                a.steps,
                True,
                m,
                **({"attn_implementation": "flash_attention_2"} if flash else {}),
            )
            if installed("liger_kernel") and tt.has_cuda():
                configs[f"{method} jaflow packing+liger"] = lambda m=method: tt.run_jaflow(
                    model_dir,
                    data_dir,
                    root / "l",
                    a.steps,
                    True,
                    m,
                    liger_kernel=True,
                    **({"attn_implementation": "flash_attention_2"} if flash else {}),
                )
        configs["lisa(2) jaflow"] = lambda: tt.run_jaflow(
            model_dir,
            data_dir,
            root / "lisa",
            a.steps,
            False,
            "lisa",
            lisa_layers=2,
            lisa_interval=2,
            optim="adamw_torch",
        )
        if a.only:
            configs = {k: v for k, v in configs.items() if k.startswith(a.only)}
        for name, fn in configs.items():
            if time.perf_counter() - start > a.budget_s:
                report["skipped"].append(name)
                continue
            t = time.perf_counter()
            try:
                row = peak_memory_run(fn)
            except Exception as e:  # one configuration failing must not lose the others' numbers
                report["errors"][name] = "".join(
                    traceback.format_exception_only(type(e), e)
                ).strip()
                traceback.print_exc()
                save()
                continue
            row["wall_s"] = time.perf_counter() - t
            if not name.startswith("lisa"):
                row["mfu"] = 4 * n * row["tokens_per_s"] / (a.peak_tflops * 1e12)
            report["runs"][name] = row
            print(
                f"{name:28s} {row['tokens_per_s']:9.0f} tokens/s  MFU {100 * row.get('mfu', 0):5.1f}%  "
                f"peak {row.get('peak_mem_gib', 0):6.1f} GiB  padding {100 * row['padding']:.0f}%  "
                f"eval_loss {row['eval_loss']:.4f}  ({row['wall_s']:.0f} s)",
                flush=True,
            )
            save()
        if a.no_eval_speed:
            pass
        elif time.perf_counter() - start < a.budget_s + 30:
            try:
                report["eval_speed"] = eval_speed(model_dir, 200 if tt.has_cuda() else 8, 16)
            except Exception as e:
                report["errors"]["eval_speed"] = repr(e)
        else:
            report["skipped"].append("eval_speed")
    runs = report["runs"]
    for method in ("qlora", "lora"):
        ours = runs.get(f"{method} jaflow", {}).get("tokens_per_s")
        for base in ("qlora.py-style", "SFTTrainer"):
            theirs = runs.get(f"{method} {base}", {}).get("tokens_per_s")
            if ours and theirs:
                report.setdefault("ratios", {})[f"{method} jaflow / {base}"] = ours / theirs
                packed = runs.get(f"{method} jaflow packing", {}).get("tokens_per_s")
                if packed:
                    report["ratios"][f"{method} jaflow packing / {base}"] = packed / theirs
        names = [k for k in runs if k.startswith(method)]
        if len(names) > 1:
            ref = runs[names[0]]["losses"]
            report.setdefault("max_loss_diff", {}).update(
                {
                    k: max(abs(x - y) for x, y in zip(ref, runs[k]["losses"], strict=True))
                    for k in names[1:]
                }
            )
    if "lisa(2) jaflow" in runs and "lora jaflow" in runs:
        report["lisa_vs_lora_peak_mem"] = (
            runs["lisa(2) jaflow"].get("peak_mem_gib"),
            runs["lora jaflow"].get("peak_mem_gib"),
        )
    report["total_s"] = time.perf_counter() - start
    save()
    print(
        json.dumps(
            {
                k: report.get(k)
                for k in (
                    "ratios",
                    "max_loss_diff",
                    "lisa_vs_lora_peak_mem",
                    "eval_speed",
                    "skipped",
                    "errors",
                    "total_s",
                )
            },
            indent=2,
            default=str,
        )
    )
    return report


if __name__ == "__main__":
    main()
