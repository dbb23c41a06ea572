"""The training tests' world: conftest's tiny tokenizer and models, a tiny Mixtral, and a
learnable synthetic instruction task (the prompt names a word, the response is its opposite).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

PAIRS = [
    ("あつい", "さむい"),
    ("たかい", "ひくい"),
    ("おおきい", "ちいさい"),
    ("はやい", "おそい"),
    ("ながい", "みじかい"),
    ("あかるい", "くらい"),
    ("おもい", "かるい"),
    ("ひろい", "せまい"),
]
FILLER = "きょうはいいてんきですねほんとうにそうおもいます"
PROMPT = "### 指示:\n{filler}。{word}の反対は?\n\n### 応答:\n"


def rows(n: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        word, opposite = rng.choice(PAIRS)
        k = rng.randint(0, 8)
        filler = FILLER[k : k + rng.randint(2, 10)]
        out.append(
            {
                "id": f"syn:{seed}:{i}",
                "source": "syn",
                "prompt": PROMPT.format(filler=filler, word=word),
                "response": opposite,
            }
        )
    return out


def write_dataset(dirpath: Path, n_train: int = 160, n_val: int = 32, seed: int = 0) -> Path:
    dirpath.mkdir(parents=True, exist_ok=True)
    for split, n, s in (("train", n_train, seed), ("validation", n_val, seed + 1)):
        with open(dirpath / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for r in rows(n, s):
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return dirpath


def build_mixtral(tokenizer_dir: Path, out_dir: Path, num_layers: int = 4, seed: int = 0) -> Path:
    """A tiny random Mixtral (4 experts, top-2); jaflow.tiny builds the dense architectures."""
    import torch
    from transformers import AutoTokenizer, MixtralConfig, MixtralForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = MixtralConfig(
        vocab_size=len(tok),
        hidden_size=64,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        intermediate_size=128,
        max_position_embeddings=256,
        num_local_experts=4,
        num_experts_per_tok=2,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    MixtralForCausalLM(config).save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir


# -- fixtures (imported by the training tests) --------------------------------------------

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def train_world(tmp_path_factory, tiny_tokenizer_dir, tiny_model):
    """Paths of the tiny world: tokenizer, llama (conftest's), and the synthetic dataset."""
    root = tmp_path_factory.mktemp("train_world")
    write_dataset(root / "data")
    return {
        "root": root,
        "tokenizer": tiny_tokenizer_dir,
        "llama": tiny_model("llama"),
        "data": root / "data",
        "tiny_model": tiny_model,
    }


def make_job(
    world, out_dir: Path, method: str, model_dir: Path | None = None, select=None, **train
):
    from jaflow.train.recipes import TrainJob

    defaults = {
        "max_steps": 20,
        "eval_steps": 5,
        "logging_steps": 5,
        "learning_rate": 3e-3,
        "lora_r": 8,
        "lora_alpha": 16,
        "per_device_train_batch_size": 8,
        "per_device_eval_batch_size": 16,
        "gradient_accumulation_steps": 1,
        "warmup_ratio": 0.0,
        "gradient_checkpointing": False,
    }
    return TrainJob(
        name=out_dir.name,
        method=method,
        model={
            "pretrained": str(model_dir or world["llama"]),
            "peft": None,
            "tokenizer": None,
            "use_fast": True,
            "trust_remote_code": False,
            "dtype": "auto",
        },
        train_file=str(world["data"] / "train.jsonl"),
        validation_file=str(world["data"] / "validation.jsonl"),
        out_dir=str(out_dir),
        checkpoints=str(out_dir / "checkpoints"),
        train=defaults | train,
        seed=0,
        select=select or {},
    )
