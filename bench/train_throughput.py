"""Training throughput: jaflow's qlora training step vs a baseline configured like qlora.py.

Both train the same 4-bit nf4 + LoRA (r 64, all linear) model on the same rows for the same
number of optimizer steps with the same tokens per optimizer step, and count real (non-padding)
tokens per second after a warm-up step:

- baseline (artidoro/qlora `qlora.py` on today's API): HF Trainer, a collator that tokenizes source
  and target in every batch and pads per batch, batch 1 x accumulation 16, `group_by_length`,
  `paged_adamw_32bit`, gradient checkpointing;
- jaflow: `jaflow.train` recipe (pre-tokenized, prompt-masked rows, per-batch padding, seed 000's
  batch 8 x accumulation 2), once as configured and once with `packing: true`.

    python bench/train_throughput.py                      # tiny Llama on CPU
    python bench/train_throughput.py --size 1b --steps 20  # 1B-shaped random Llama on a GPU

Prints one line per configuration and the ratios to the baseline; `--json` writes them.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments

from jaflow.train import builders, data
from jaflow.train.recipes import TrainJob, build_trainer

SIZES = {  # (hidden, layers, heads, intermediate)
    "tiny": (64, 4, 4, 128),
    "small": (256, 8, 8, 688),
    "1b": (2048, 16, 32, 8192),  # Llama-3.2-1B-shaped
}


class StepClock(TrainerCallback):
    """Wall time and non-padding tokens from the end of the first optimizer step to the last."""

    def __init__(self):
        self.t0 = self.tok0 = None
        self.t1 = self.tok1 = None

    def on_step_end(self, args, state, control, **kwargs):
        if builders.has_cuda():
            torch.cuda.synchronize()
        now = time.perf_counter()
        if state.global_step == 1:
            self.t0, self.tok0 = now, state.num_input_tokens_seen
        self.t1, self.tok1 = now, state.num_input_tokens_seen

    @property
    def tokens_per_s(self) -> float:
        return (self.tok1 - self.tok0) / (self.t1 - self.t0)


def make_world(root: Path, size: str, n_rows: int, seed: int) -> tuple[Path, Path]:
    """A byte-level tokenizer-free world: a random Llama of `size` and variable-length rows."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    rng = random.Random(seed)
    words = ["あつい", "さむい", "たかい", "ひくい", "はやい", "おそい", "ながい", "みじかい", "今日", "天気"]
    rows = []
    for i in range(n_rows):
        prompt = "### 指示:\n" + "".join(rng.choice(words) for _ in range(rng.randint(3, 40))) + "\n\n### 応答:\n"
        response = "".join(rng.choice(words) for _ in range(rng.randint(1, 60)))
        rows.append({"id": str(i), "source": "bench", "prompt": prompt, "response": response})
    data_dir = root / "data"
    data_dir.mkdir(parents=True)
    for split, part in (("train", rows), ("validation", rows[:16])):
        (data_dir / f"{split}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part))
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split("\n", "isolated")
    tok.train_from_iterator([r["prompt"] + r["response"] for r in rows],
                            trainers.BpeTrainer(vocab_size=300, special_tokens=["<pad>", "<s>", "</s>", "<unk>"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>")
    hidden, layers, heads, inter = SIZES[size]
    vocab = len(fast) if size != "1b" else 32000
    config = LlamaConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                         num_key_value_heads=max(1, heads // 4), intermediate_size=inter,
                         max_position_embeddings=2048, tie_word_embeddings=False,
                         bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
                         pad_token_id=fast.pad_token_id)
    torch.manual_seed(seed)
    model_dir = root / "model"
    LlamaForCausalLM(config).save_pretrained(model_dir)
    fast.save_pretrained(model_dir)
    return model_dir, data_dir


class QloraPyCollator:
    """qlora.py's DataCollatorForCausalLM: tokenize per batch, bos+source / target+eos, pad per batch."""

    def __init__(self, tokenizer, source_max_len=1024, target_max_len=256):
        self.tok, self.smax, self.tmax = tokenizer, source_max_len, target_max_len

    def __call__(self, instances):
        src = [self.tok.bos_token + x["input"] for x in instances]
        tgt = [x["output"] + self.tok.eos_token for x in instances]
        s = self.tok(src, max_length=self.smax, truncation=True, add_special_tokens=False)["input_ids"]
        t = self.tok(tgt, max_length=self.tmax, truncation=True, add_special_tokens=False)["input_ids"]
        ids = [torch.tensor(a + b) for a, b in zip(s, t, strict=True)]
        labels = [torch.tensor([data.IGNORE_INDEX] * len(a) + b) for a, b in zip(s, t, strict=True)]
        ids = torch.nn.utils.rnn.pad_sequence(ids, batch_first=True, padding_value=self.tok.pad_token_id)
        labels = torch.nn.utils.rnn.pad_sequence(labels, batch_first=True, padding_value=data.IGNORE_INDEX)
        return {"input_ids": ids, "attention_mask": ids.ne(self.tok.pad_token_id).long(), "labels": labels}


def baseline(model_dir: Path, data_dir: Path, out: Path, steps: int, tokens_per_step: int) -> StepClock:
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    tok = builders.load_tokenizer({"pretrained": str(model_dir)})
    from datasets import Dataset

    rows = Dataset.from_list([{"input": r["prompt"], "output": r["response"],
                               "length": len(r["prompt"]) + len(r["response"])}
                              for r in data.read_pairs(data_dir / "train.jsonl")])
    args_q = {"bits": 4, "quant_type": "nf4", "double_quant": True}
    model = builders.load_model({"pretrained": str(model_dir)}, "qlora", args_q)
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    model = get_peft_model(model, LoraConfig(r=64, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear",
                                             task_type="CAUSAL_LM"))
    clock = StepClock()
    args = TrainingArguments(
        output_dir=str(out), max_steps=steps, per_device_train_batch_size=1,
        gradient_accumulation_steps=tokens_per_step, learning_rate=2e-4, lr_scheduler_type="constant",
        warmup_steps=0.03, max_grad_norm=0.3, optim="paged_adamw_32bit", train_sampling_strategy="group_by_length",
        length_column_name="length", remove_unused_columns=False, save_strategy="no", eval_strategy="no",
        report_to="none", include_num_input_tokens_seen="non_padding", use_cpu=not builders.has_cuda(),
        bf16=builders.has_cuda(), logging_steps=10_000, disable_tqdm=True, seed=0,
    )
    Trainer(model=model, args=args, train_dataset=rows, data_collator=QloraPyCollator(tok),
            processing_class=tok, callbacks=[clock]).train()
    return clock


def ours(model_dir: Path, data_dir: Path, out: Path, steps: int, batch: int, accum: int, packing: bool) -> StepClock:
    job = TrainJob(
        name="bench", method="qlora", model={"pretrained": str(model_dir)},
        train_file=str(data_dir / "train.jsonl"), validation_file=str(data_dir / "validation.jsonl"),
        out_dir=str(out), checkpoints=str(out / "checkpoints"), seed=0,
        train={"max_steps": steps, "eval_steps": 10_000, "logging_steps": 10_000, "lora_dropout": 0.0,
               "per_device_train_batch_size": batch, "gradient_accumulation_steps": accum,
               "packing": packing, "max_length": 512},
    )
    clock = StepClock()
    trainer = build_trainer(job, [clock])
    trainer.args.save_strategy = "no"
    trainer.args.eval_strategy = "no"
    trainer.args.disable_tqdm = True
    trainer.callback_handler.callbacks = [c for c in trainer.callback_handler.callbacks
                                          if type(c).__name__ != "EvaluateAtEndCallback"]
    trainer.train()
    return clock


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", choices=sorted(SIZES), default="tiny")
    p.add_argument("--steps", type=int, default=6, help="optimizer steps per configuration (first is warm-up)")
    p.add_argument("--rows", type=int, default=400)
    p.add_argument("--peak-tflops", type=float, default=989.0, help="GPU bf16 dense peak for MFU (H100/H200: 989)")
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model_dir, data_dir = make_world(root, a.size, a.rows, seed=0)
        from transformers import AutoConfig

        cfg = AutoConfig.from_pretrained(model_dir)
        h, L, i, v = cfg.hidden_size, cfg.num_hidden_layers, cfg.intermediate_size, cfg.vocab_size
        n_params = L * (4 * h * h * (1 + 2 * cfg.num_key_value_heads / cfg.num_attention_heads) / 2 + 3 * h * i) + 2 * v * h
        runs = {
            "baseline (qlora.py: bs1 x ga16, group_by_length)": lambda: baseline(model_dir, data_dir, root / "b", a.steps, 16),
            "jaflow qlora (bs8 x ga2)": lambda: ours(model_dir, data_dir, root / "o", a.steps, 8, 2, False),
            "jaflow qlora + packing (bs8 x ga2)": lambda: ours(model_dir, data_dir, root / "p", a.steps, 8, 2, True),
        }
        for name, fn in runs.items():
            if builders.has_cuda():
                torch.cuda.reset_peak_memory_stats()
            clock = fn()
            row = {"tokens_per_s": clock.tokens_per_s}
            if builders.has_cuda():
                row["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
                row["mfu"] = 6 * n_params * clock.tokens_per_s / (a.peak_tflops * 1e12)
            results[name] = row
    base = next(iter(results.values()))["tokens_per_s"]
    device = torch.cuda.get_device_name() if builders.has_cuda() else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {device}; model: {a.size} Llama ({n_params / 1e6:.2f}M params, 4-bit nf4 + LoRA r64)")
    for name, row in results.items():
        extra = "".join(f"  {k}={v:.3g}" for k, v in row.items() if k != "tokens_per_s")
        print(f"{name:50s} {row['tokens_per_s']:10.1f} tokens/s  ratio {row['tokens_per_s'] / base:5.2f}x{extra}")
    if a.json:
        a.json.write_text(json.dumps({"device": device, "size": a.size, "results": results}, indent=2))
    return results


if __name__ == "__main__":
    sys.exit(main() and 0)
