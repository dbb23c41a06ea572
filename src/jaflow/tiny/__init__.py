"""The tiny offline world: a tokenizer and tiny models that the demo and tests build themselves.

The tokenizer is a BPE with byte fallback, pre-split on whitespace and punctuation so that no
merge crosses a prompt/answer boundary: `tokenize(prompt) + tokenize(answer)` equals
`tokenize(prompt + answer)` for every template the tiny world uses. Without that split a BPE
trained on the task corpus learns merges such as `応答:\\nポジティブ` and prompt masking and
lm-eval's choice log-likelihoods go silently wrong (see the reference's tiny-world notes).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from jaflow.io import atomic_path

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<unk>"]
BYTE_TOKENS = [f"<0x{i:02X}>" for i in range(256)]
ARCHITECTURES = ("llama", "gpt_neox", "mistral")
# Weight init std of the tiny models. transformers' 0.02 makes the frozen lm_head rows so short
# that, behind a frozen final norm, logits can never leave about +-1.3: LoRA/QLoRA then cannot push
# the loss below ~5 whatever it trains (full fine-tuning can, as it trains lm_head and norms).
# At 0.3 a QLoRA adapter learns the demo's tasks in tens of steps.
INITIALIZER_RANGE = 0.3
# ... but at 0.3 the attention logits (q.k over 64 dims) have a std of about 6, so every head
# attends to one arbitrary position and an adapter's gradient cannot move it to the tokens that
# matter (a review's sentiment words): the demo's QLoRA learned MARC-ja for some seeds only. Query
# and key weights start this much smaller, so attention starts nearly uniform and is learned.
QUERY_KEY_SCALE = 0.1


def _raw_tokenizer(texts: Iterable[str], vocab_size: int):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(r"\s"), behavior="isolated"),
            pre_tokenizers.Punctuation(behavior="isolated"),
            pre_tokenizers.Digits(individual_digits=True),
        ]
    )
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse()])
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS + BYTE_TOKENS,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    # Byte tokens must live in the model vocab (byte fallback looks them up there) but must
    # not be "special", or decoding with skip_special_tokens would drop them.
    spec = json.loads(tok.to_str())
    spec["added_tokens"] = [t for t in spec["added_tokens"] if t["content"] in SPECIAL_TOKENS]
    return Tokenizer.from_str(json.dumps(spec))


def build_tokenizer(texts: Iterable[str], out_dir: str | Path, vocab_size: int = 400):
    """Train the tiny tokenizer on `texts` and save it (HF format) to `out_dir`."""
    from transformers import PreTrainedTokenizerFast

    raw = _raw_tokenizer(list(texts), vocab_size)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        model_max_length=2048,
        clean_up_tokenization_spaces=False,
    )
    with atomic_path(out_dir) as tmp:
        tokenizer.save_pretrained(tmp)
    return tokenizer


def model_config(
    arch: str,
    tokenizer,
    *,
    hidden_size: int = 64,
    num_layers: int = 4,
    num_heads: int = 4,
    intermediate_size: int = 128,
):
    """A transformers config of the given architecture, sized tiny."""
    from transformers import GPTNeoXConfig, LlamaConfig, MistralConfig

    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        initializer_range=INITIALIZER_RANGE,
    )
    if arch == "llama":
        return LlamaConfig(num_key_value_heads=num_heads, **common)
    if arch == "mistral":
        return MistralConfig(
            num_key_value_heads=max(1, num_heads // 2), sliding_window=None, **common
        )
    if arch == "gpt_neox":
        return GPTNeoXConfig(rotary_pct=0.25, use_parallel_residual=True, **common)
    raise ValueError(f"unknown tiny architecture '{arch}' (known: {list(ARCHITECTURES)})")


def build_model(
    arch: str,
    tokenizer_dir: str | Path,
    out_dir: str | Path,
    *,
    hidden_size: int = 64,
    num_layers: int = 4,
    num_heads: int = 4,
    intermediate_size: int = 128,
    seed: int = 0,
) -> Path:
    """A randomly initialised tiny model of `arch`, saved with its tokenizer to `out_dir`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = model_config(
        arch,
        tokenizer,
        hidden_size=hidden_size,
        num_layers=num_layers,
        num_heads=num_heads,
        intermediate_size=intermediate_size,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    soften_attention(model, num_heads)
    with atomic_path(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return Path(out_dir)


def soften_attention(model, num_heads: int, scale: float = QUERY_KEY_SCALE) -> None:
    """Scale the query and key projections by `scale` (see QUERY_KEY_SCALE)."""
    import torch

    with torch.no_grad():
        for name, module in model.named_modules():
            if name.endswith(("q_proj", "k_proj")):
                module.weight.mul_(scale)
            elif name.endswith("query_key_value"):  # GPT-NeoX: rows are (head, q|k|v, head_dim)
                rows = module.weight.view(num_heads, 3, -1, module.weight.shape[1])
                rows[:, :2].mul_(scale)


def iter_texts(paths: Iterable[str | Path]) -> Iterable[str]:
    """Every string value in the JSON / JSON-lines files below `paths` (tokenizer corpus)."""

    def strings(obj):
        if isinstance(obj, str):
            yield obj
        elif isinstance(obj, dict):
            for v in obj.values():
                yield from strings(v)
        elif isinstance(obj, list):
            for v in obj:
                yield from strings(v)

    files: list[Path] = []
    for p in map(Path, paths):
        files += sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    for f in files:
        if f.suffix not in (".json", ".jsonl"):
            continue
        text = f.read_text(encoding="utf-8")
        try:
            yield from strings(json.loads(text))
        except json.JSONDecodeError:
            for line in text.splitlines():
                if line.strip():
                    yield from strings(json.loads(line))


def template_texts() -> list[str]:
    """The fixed strings of every named prompt format, so the tokenizer learns them."""
    from jaflow.data.templates import TEMPLATES

    row = {"instruction": "指示", "input": "入力", "output": "出力"}
    return [t().render(row).text for t in TEMPLATES.values()]
