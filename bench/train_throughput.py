"""Training throughput, like for like: jaflow vs a qlora.py-style Trainer vs TRL's SFTTrainer.

Every configuration trains the same 4-bit nf4 (double quant) + LoRA r 64 (all linear, alpha 16)
model from the same base and the same LoRA init, on the same rows in the same order (seeded
length grouping, the same token lengths), at the same batch shape (seed 000's 8 x accumulation
2, as seed 000 ran qlora.py), for the same number of optimizer steps with the same optimizer,
learning rate, schedule and clipping; then runs one evaluation over the validation rows. Tokens
are counted the same way on every side (non-padding tokens the collator hands to the model), the
first optimizer step is warm-up, and the per-step training losses are printed side by side: the
runs are the same work when the curves agree within the stated tolerance.

- qlora.py-style (artidoro/qlora on today's API): `AutoModelForCausalLM` + `BitsAndBytesConfig`,
  `prepare_model_for_kbit_training` (gradient checkpointing), a collator that tokenizes
  `bos + source` / `target + eos` in every batch and pads per batch, `group_by_length`,
  `paged_adamw_32bit`, constant schedule with 3% warm-up, max_grad_norm 0.3.
- SFTTrainer (TRL) with its defaults (prompt-completion rows, its tokenization, completion-only
  loss, its padding collator and extra per-step metrics), given the shared settings above.
- jaflow: the `jaflow.train` qlora recipe with its defaults (pre-tokenized prompt-masked rows,
  length grouping, per-batch padding), and with `packing: true` (padding-free rows, per-example
  position ids, attention within each example: the same examples per step, no padding).

Rows are synthetic Japanese-like text over a 32,000-word vocabulary with Zipf frequencies; prompt
and response lengths are log-normal (a few hundred tokens per row, a long tail to ~1,000).

    python bench/train_throughput.py --quick        # tiny Llama, ~2 minutes on 2 CPU cores
    python bench/train_throughput.py                # small Llama (8 layers, 256 wide)
    python bench/train_throughput.py --size 1b --steps 20 --peak-tflops 989   # on a GPU

MFU counts 4N FLOPs per token for a frozen base (forward 2N, backward through activations 2N;
the LoRA weights' own gradients are negligible), N the base's matmul parameters (LM head
included, embeddings excluded), attention's sequence-length term left out.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

SIZES = {  # hidden, layers, heads, kv heads, intermediate
    "tiny": (64, 4, 4, 2, 128),
    "small": (256, 8, 8, 2, 704),
    "1b": (2048, 16, 32, 8, 8192),  # Llama-3.2-1B-shaped
    "7b": (4096, 32, 32, 32, 11008),  # Llama-2-7B-shaped (6.7B parameters)
}
VOCAB = 32000
SHARED = {  # settings every configuration trains with
    "per_device_train_batch_size": 8,
    "gradient_accumulation_steps": 2,
    "learning_rate": 2e-4,
    "lr_scheduler_type": "constant",
    "warmup_ratio": 0.03,
    "max_grad_norm": 0.3,
    "optim": "paged_adamw_32bit",
    "lora_r": 64,
    "lora_alpha": 16,
    "lora_dropout": 0.0,
    "seed": 0,
}


RATE, UNIT = "tokens_per_s", "tokens/s"  # main() switches to CPU seconds on a CPU


def has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


# -- the world: tokenizer, model, rows ----------------------------------------------------


def make_world(
    root: Path, size: str, n_rows: int, seed: int, scale: float = 1.0, n_val: int = 32
) -> tuple[Path, Path]:
    """A word-level tokenizer over VOCAB words (BOS added by its post-processor), a random Llama
    of `size`, and prompt/response rows with Zipf words and log-normal lengths."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    rng = random.Random(seed)
    kana = [chr(c) for c in range(0x3042, 0x3094)] + [chr(c) for c in range(0x30A2, 0x30F4)]
    specials = ["<pad>", "<s>", "</s>", "<unk>"]
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < VOCAB - len(specials):
        w = "".join(rng.choice(kana) for _ in range(rng.randint(1, 4)))
        if w not in seen:
            seen.add(w)
            words.append(w)
    vocab = {t: i for i, t in enumerate(specials + words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
    )
    weights = [1.0 / (r + 2.7) ** 1.1 for r in range(len(words))]

    def text(n: int) -> str:
        return " ".join(rng.choices(words, weights=weights, k=n))

    def length(median: float, sigma: float, cap: int) -> int:
        return max(4, min(cap, int(rng.lognormvariate(math.log(median), sigma))))

    rows = []
    for i in range(n_rows):
        prompt = "指示 :\n" + text(length(110 * scale, 0.8, int(500 * scale))) + "\n応答 :\n"
        rows.append(
            {
                "id": str(i),
                "source": "bench",
                "prompt": prompt,
                "response": text(length(150 * scale, 0.9, int(480 * scale))),
            }
        )
    data_dir = root / "data"
    data_dir.mkdir(parents=True)
    for split, part in (("train", rows[n_val:]), ("validation", rows[:n_val])):
        (data_dir / f"{split}.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part), encoding="utf-8"
        )
    hidden, layers, heads, kv, inter = SIZES[size]
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        intermediate_size=inter,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
    )
    torch.manual_seed(seed)
    model_dir = root / "model"
    if has_cuda():  # a 7B-shaped model: initialise on the GPU in bf16, not on the CPU in fp32
        with torch.device("cuda"):
            model = LlamaForCausalLM(config).to(torch.bfloat16)
        model.save_pretrained(model_dir)
        del model
        torch.cuda.empty_cache()
    else:
        LlamaForCausalLM(config).save_pretrained(model_dir)
    fast.save_pretrained(model_dir)
    return model_dir, data_dir


def matmul_params(cfg) -> int:
    """Weights of the base's matrix multiplies: q, k, v, o, gate, up, down per layer, LM head."""
    h, i = cfg.hidden_size, cfg.intermediate_size
    kv = h * cfg.num_key_value_heads // cfg.num_attention_heads
    return cfg.num_hidden_layers * (2 * h * h + 2 * h * kv + 3 * h * i) + cfg.vocab_size * h


# -- measuring ----------------------------------------------------------------------------


class CountingCollator:
    """Wraps a collator: counts the non-padding (and all) tokens of every training batch."""

    def __init__(self, inner):
        self.inner, self.tokens, self.slots, self.active = inner, 0, 0, True

    def __call__(self, features):
        batch = self.inner(features)
        if self.active:
            ids = batch["input_ids"]
            mask = batch.get("attention_mask")
            self.tokens += int(mask.sum()) if mask is not None else ids.numel()
            self.slots += ids.numel()
        return batch


def clock_callback(counter: CountingCollator):
    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        """Wall time and counted tokens from the end of optimizer step 1 to the last."""

        def __init__(self):
            self.marks: list[tuple[float, int, int]] = []

        def on_step_end(self, args, state, control, **kwargs):
            if has_cuda():
                import torch

                torch.cuda.synchronize()
            self.marks.append(
                (time.perf_counter(), time.process_time(), counter.tokens, counter.slots)
            )

    return StepClock()


def measure(trainer, counter: CountingCollator) -> dict:
    import torch

    clock = clock_callback(counter)
    trainer.add_callback(clock)
    if has_cuda():
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    (t0, c0, k0, s0), (t1, c1, k1, s1) = clock.marks[0], clock.marks[-1]
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    counter.active = False
    t = time.perf_counter()
    eval_loss = trainer.evaluate()["eval_loss"]
    row = {
        "tokens_per_s": (k1 - k0) / (t1 - t0),
        "tokens_per_cpu_s": (k1 - k0)
        / (c1 - c0),  # this process's CPU time: steady on a shared CPU
        "tokens": k1 - k0,
        "padding": 1 - (k1 - k0) / (s1 - s0),
        "seconds": t1 - t0,
        "losses": losses,
        "eval_loss": eval_loss,
        "eval_s": time.perf_counter() - t,
    }
    if has_cuda():
        row["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return row


def common_args(out: Path, steps: int, **extra) -> dict:
    return dict(
        output_dir=str(out),
        max_steps=steps,
        per_device_train_batch_size=SHARED["per_device_train_batch_size"],
        per_device_eval_batch_size=16,
        gradient_accumulation_steps=SHARED["gradient_accumulation_steps"],
        learning_rate=SHARED["learning_rate"],
        lr_scheduler_type=SHARED["lr_scheduler_type"],
        warmup_steps=SHARED["warmup_ratio"],
        max_grad_norm=SHARED["max_grad_norm"],
        optim=SHARED["optim"],
        train_sampling_strategy="group_by_length",
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        logging_steps=1,
        disable_tqdm=True,
        seed=SHARED["seed"],
        data_seed=SHARED["seed"],
        use_cpu=not has_cuda(),
        bf16=has_cuda(),
        remove_unused_columns=False,
        dataloader_num_workers=0,
        **extra,
    )


def load_base(model_dir: Path, method: str):
    """The base as qlora.py loads it (no jaflow code): 4-bit nf4 for qlora (`--bits 4`), the
    compute dtype for lora (`--bits 16`)."""
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    dtype = torch.bfloat16 if has_cuda() else torch.float32
    kwargs = {"dtype": dtype, "device_map": {"": 0} if has_cuda() else {"": "cpu"}}
    if method == "qlora":
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype,
        )
    model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs)
    model.config.use_cache = False
    return model


def lora_config():
    from peft import LoraConfig

    return LoraConfig(
        r=SHARED["lora_r"],
        lora_alpha=SHARED["lora_alpha"],
        lora_dropout=SHARED["lora_dropout"],
        target_modules="all-linear",
        bias="none",
        task_type="CAUSAL_LM",
    )


def token_lengths(model_dir: Path, rows: list[dict]) -> list[int]:
    """Row lengths in tokens as jaflow counts them ([BOS] prompt response EOS)."""
    from jaflow.hf import load_tokenizer
    from jaflow.train import data

    tok = load_tokenizer(
        {
            "pretrained": str(model_dir),
            "tokenizer": None,
            "use_fast": True,
            "trust_remote_code": False,
        }
    )
    return [
        len(data.tokenize_example(tok, r["prompt"], r["response"], 4096)["input_ids"]) for r in rows
    ]


class QloraPyCollator:
    """qlora.py's DataCollatorForCausalLM: tokenize per batch, bos+source / target+eos, pad per batch."""

    def __init__(self, tokenizer, source_max_len=1024, target_max_len=1024):
        self.tok, self.smax, self.tmax = tokenizer, source_max_len, target_max_len

    def __call__(self, instances):
        import torch

        src = [self.tok.bos_token + x["input"] for x in instances]
        tgt = [x["output"] + self.tok.eos_token for x in instances]
        s = self.tok(src, max_length=self.smax, truncation=True, add_special_tokens=False)[
            "input_ids"
        ]
        t = self.tok(tgt, max_length=self.tmax, truncation=True, add_special_tokens=False)[
            "input_ids"
        ]
        ids = [torch.tensor(a + b) for a, b in zip(s, t, strict=True)]
        labels = [torch.tensor([-100] * len(a) + b) for a, b in zip(s, t, strict=True)]
        ids = torch.nn.utils.rnn.pad_sequence(
            ids, batch_first=True, padding_value=self.tok.pad_token_id
        )
        labels = torch.nn.utils.rnn.pad_sequence(labels, batch_first=True, padding_value=-100)
        return {
            "input_ids": ids,
            "attention_mask": ids.ne(self.tok.pad_token_id).long(),
            "labels": labels,
        }


def run_qlora_py(
    model_dir: Path, data_dir: Path, out: Path, steps: int, method: str = "qlora"
) -> dict:
    from datasets import Dataset
    from peft import get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoTokenizer, Trainer, TrainingArguments, set_seed

    from jaflow.io import read_jsonl

    def dataset(split):
        rows = read_jsonl(data_dir / f"{split}.jsonl")
        # qlora.py groups by character length; the same token lengths as the others keep the order equal
        return Dataset.from_list(
            [
                {"input": r["prompt"], "output": r["response"], "length": n}
                for r, n in zip(rows, token_lengths(model_dir, rows), strict=True)
            ]
        )

    set_seed(SHARED["seed"])
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = load_base(model_dir, method)
    if method == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    model = get_peft_model(model, lora_config())
    counter = CountingCollator(QloraPyCollator(tok))
    # qlora.py: gradient checkpointing on (prepare_model_for_kbit_training switches it on for 4-bit)
    extra = {}
    if method != "qlora":
        extra = {
            "gradient_checkpointing": True,
            "gradient_checkpointing_kwargs": {"use_reentrant": False},
        }
    args = TrainingArguments(**common_args(out, steps, length_column_name="length", **extra))
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=dataset("train"),
        eval_dataset=dataset("validation"),
        data_collator=counter,
        processing_class=tok,
    )
    return measure(trainer, counter)


def run_sft(model_dir: Path, data_dir: Path, out: Path, steps: int, method: str = "qlora") -> dict:
    from datasets import Dataset
    from transformers import AutoTokenizer, set_seed
    from trl import SFTConfig, SFTTrainer

    from jaflow.io import read_jsonl

    def dataset(split):
        return Dataset.from_list(
            [
                {"prompt": r["prompt"], "completion": r["response"]}
                for r in read_jsonl(data_dir / f"{split}.jsonl")
            ]
        )

    set_seed(SHARED["seed"])
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = load_base(model_dir, method)
    args = SFTConfig(**common_args(out, steps), gradient_checkpointing=True)
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset("train"),
        eval_dataset=dataset("validation"),
        processing_class=tok,
        peft_config=lora_config(),
    )
    counter = CountingCollator(trainer.data_collator)
    trainer.data_collator = counter
    return measure(trainer, counter)


def run_jaflow(
    model_dir: Path,
    data_dir: Path,
    out: Path,
    steps: int,
    packing: bool,
    method: str = "qlora",
    **overrides,
) -> dict:
    from jaflow.train.recipes import TrainJob, build_trainer

    train = (
        {k: v for k, v in SHARED.items() if k != "seed"}
        | {
            "max_steps": steps,
            "logging_steps": 1,
            "max_length": 4096,
            "packing": packing,
        }
        | overrides
    )
    job = TrainJob(
        name="bench",
        method=method,
        model={
            "pretrained": str(model_dir),
            "peft": None,
            "tokenizer": None,
            "use_fast": True,
            "trust_remote_code": False,
            "dtype": "auto",
        },
        train_file=str(data_dir / "train.jsonl"),
        validation_file=str(data_dir / "validation.jsonl"),
        out_dir=str(out),
        checkpoints=str(out / "checkpoints"),
        train=train,
        seed=SHARED["seed"],
    )
    trainer = build_trainer(job)
    trainer.args.save_strategy = "no"
    trainer.args.eval_strategy = "no"
    trainer.args.disable_tqdm = True
    for cb in list(trainer.callback_handler.callbacks):
        if type(cb).__name__ == "EvaluateAtEndCallback":
            trainer.remove_callback(cb)
    counter = CountingCollator(trainer.data_collator)
    trainer.data_collator = counter
    return measure(trainer, counter)


CONFIGS = {
    "qlora.py-style": lambda m, d, o, s: run_qlora_py(m, d, o, s),
    "SFTTrainer (TRL)": lambda m, d, o, s: run_sft(m, d, o, s),
    "jaflow": lambda m, d, o, s: run_jaflow(m, d, o, s, packing=False),
    "jaflow packing": lambda m, d, o, s: run_jaflow(m, d, o, s, packing=True),
}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", choices=sorted(SIZES), default="small")
    p.add_argument(
        "--quick", action="store_true", help="tiny model, 5 steps (a couple of minutes on CPU)"
    )
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="optimizer steps per configuration (first is warm-up)",
    )
    p.add_argument("--rows", type=int, default=600)
    p.add_argument("--only", nargs="*", choices=sorted(CONFIGS), default=None)
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run the configurations N times, interleaved, and keep each one's fastest run",
    )
    p.add_argument(
        "--tolerance", type=float, default=1e-3, help="max |loss difference| for 'same work'"
    )
    p.add_argument(
        "--peak-tflops",
        type=float,
        default=None,
        help="device peak for MFU (H100/H200 bf16 dense: 989)",
    )
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)
    size = "tiny" if a.quick else a.size
    global RATE, UNIT
    RATE, UNIT = (
        ("tokens_per_s", "tokens/s") if has_cuda() else ("tokens_per_cpu_s", "tokens/CPU-s")
    )
    steps = a.steps or (5 if a.quick else 6)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from transformers import AutoConfig

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model_dir, data_dir = make_world(root, size, a.rows, seed=0)
        cfg = AutoConfig.from_pretrained(model_dir)
        n = matmul_params(cfg)
        lengths = token_lengths(
            model_dir, [json.loads(line) for line in open(data_dir / "train.jsonl")]
        )
        for r in range(a.repeat):
            for name in a.only or CONFIGS:
                row = CONFIGS[name](
                    model_dir, data_dir, root / f"{name.replace(' ', '_')}-{r}", steps
                )
                row["runs_tokens_per_s"] = [
                    *results.get(name, {}).get("runs_tokens_per_s", []),
                    row[RATE],
                ]
                if name not in results or row[RATE] > results[name][RATE]:
                    results[name] = row
                else:
                    results[name]["runs_tokens_per_s"] = row["runs_tokens_per_s"]
    device = (
        torch.cuda.get_device_name() if has_cuda() else f"CPU ({torch.get_num_threads()} threads)"
    )
    lengths.sort()
    print(f"device: {device}; torch {torch.__version__}")
    print(
        f"model: {size} Llama, {n / 1e6:.2f}M matmul params (vocab {cfg.vocab_size}), 4-bit nf4 + LoRA r64 "
        f"all-linear; batch {SHARED['per_device_train_batch_size']} x accumulation "
        f"{SHARED['gradient_accumulation_steps']}, {steps} optimizer steps (step 1 is warm-up), {SHARED['optim']}"
    )
    print(
        f"rows: {len(lengths)} train, tokens per row median {lengths[len(lengths) // 2]}, "
        f"mean {sum(lengths) / len(lengths):.0f}, p95 {lengths[int(0.95 * len(lengths))]}, max {lengths[-1]}"
    )
    print(
        f"headline: {UNIT} (on a CPU, tokens per CPU-second of the training process, which other "
        f"load on a shared machine barely moves; on a GPU, tokens per wall second)"
    )
    base_names = [b for b in ("qlora.py-style", "SFTTrainer (TRL)") if b in results]
    for name, row in results.items():
        mfu = ""
        if a.peak_tflops:
            row["mfu"] = 4 * n * row["tokens_per_s"] / (a.peak_tflops * 1e12)
            mfu = f"  MFU {100 * row['mfu']:.1f}%"
        ratios = "".join(
            f"  {row[RATE] / results[b][RATE]:.2f}x {b.split()[0]}" for b in base_names if b != name
        )
        mem = f"  peak {row['peak_mem_gib']:.2f} GiB" if "peak_mem_gib" in row else ""
        runs = "/".join(f"{x:.0f}" for x in row["runs_tokens_per_s"])
        print(
            f"{name:18s} {row[RATE]:9.1f} {UNIT} [runs {runs}]  ({row['tokens']} tokens in {row['seconds']:.1f} s wall, "
            f"{row['tokens_per_s']:.0f} tokens/s wall, "
            f"padding {100 * row['padding']:.0f}%)  eval_loss {row['eval_loss']:.5f} in {row['eval_s']:.1f} s"
            f"{mfu}{mem}{ratios}"
        )
    names = list(results)
    print("training loss per optimizer step:")
    print("step " + "".join(f"{nm:>20s}" for nm in names))
    for i in range(steps):
        print(f"{i + 1:4d} " + "".join(f"{results[nm]['losses'][i]:20.6f}" for nm in names))
    ref = names[0]
    for nm in names[1:]:
        diff = max(
            abs(x - y) for x, y in zip(results[ref]["losses"], results[nm]["losses"], strict=True)
        )
        verdict = "same work" if diff <= a.tolerance else "DIFFERENT WORK"
        print(
            f"max |loss({nm}) - loss({ref})| = {diff:.2e}  (tolerance {a.tolerance:g}: {verdict})"
        )
    if a.json:
        a.json.write_text(
            json.dumps(
                {
                    "device": device,
                    "size": size,
                    "steps": steps,
                    "matmul_params": n,
                    "results": results,
                },
                indent=2,
            )
        )
    return results


if __name__ == "__main__":
    sys.exit(main() and 0)
