"""Write the JGLUE parity goldens with jp-stable's own evaluator (run in the jp-stable venv).

    python tests/parity/make_goldens.py --jp-stable DIR --rev effdbea --data ../shared/data/jglue-v1.1

DIR is an extracted jp-stable revision (`git archive <rev>`); `tests/parity/regenerate.sh` builds
the venv, extracts the revisions and calls this once per revision. For each tokenizer of
`tests/parity/goldens/tokenizers/` (built here on the first run), each harness (`hf-causal`;
`hf-causal-experimental` for generation tasks) and each task of `TASKS[rev]`, jp-stable's
`lm_eval.evaluator.evaluate` runs its own task class and its own model class (`gpt2.HFLM` or
`huggingface.AutoCausalLM`) over the `HashLM` scoring model; the script records what crosses the
model boundary (request strings, token ids, generation limits and stops, outputs), which pool
documents each prompt's few-shot examples were, and the metrics, into
`goldens/<rev>/<tokenizer>/<harness>/<task>.json`. Strings are stored as sha256 of their UTF-8
bytes (the real documents stay out of the repository); token ids as sha256 of their JSON list
plus their count; continuations and generated texts in full (labels and short answers).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import hashlm  # noqa: E402
import parity_docs  # noqa: E402

GOLDENS = HERE / "goldens"
TOKENIZERS = GOLDENS / "tokenizers"
# tokenizer -> use_fast as jp-stable loads it (rinna cards: use_fast=False)
TOKENIZER_USE_FAST = {"spm_t5": False, "bpe_llama": True}

MC = {
    "jcommonsenseqa": ("0.2", "0.2.1", "0.3", "0.4", "0.5", "0.6"),
    "jnli13": ("0.2", "0.3", "0.4", "0.5", "0.6"),
    "marc_ja": ("0.2", "0.3", "0.4", "0.5", "0.6"),
}
HEAD_TASKS = {f"jcommonsenseqa-1.1-{t}": ("jcommonsenseqa", 3) for t in MC["jcommonsenseqa"]}
HEAD_TASKS |= {f"jnli-1.3-{t}": ("jnli", 3) for t in MC["jnli13"]}
HEAD_TASKS |= {f"marc_ja-1.1-{t}": ("marc_ja", 3) for t in MC["marc_ja"]}
HEAD_TASKS |= {
    f"jsquad-{v}-{t}": ("jsquad", 2)
    for v in ("1.1", "1.2")
    for t in ("0.2", "0.3", "0.4", "0.5", "0.6")
}
HEAD_TASKS |= {
    "xwinograd_ja": ("xwinograd_ja", 0),
    "mgsm-1.0-0.3": ("mgsm", 5),
    "xlsum_ja-1.0-0.3": ("xlsum_ja", 1),
}
OLD = ("0.2", "0.3", "0.4", "0.5")
TASKS = {
    "effdbea": HEAD_TASKS,
    "2f1583c": {
        **{f"jcommonsenseqa-1.1-{t}": ("jcommonsenseqa", 3) for t in OLD},
        **{f"jnli-1.1-{t}": ("jnli", 3) for t in OLD},
        **{f"marc_ja-1.1-{t}": ("marc_ja", 3) for t in OLD},
        **{f"jsquad-1.1-{t}": ("jsquad", 2) for t in OLD},
    },
    # jaqket_v2 0.6 at c10a2b8 predates its bug fix (9999d17) and the Japanese system prompt
    "c10a2b8": {
        **{f"jnli-1.1-{t}": ("jnli", 3) for t in ("0.2", "0.3", "0.4", "0.5", "0.6")},
        **{f"jaqket_v2-0.2-{t}": ("jaqket_v2", 1) for t in ("0.1", "0.2", "0.3", "0.4", "0.5")},
    },
}
GEN_FAMILIES = {"jsquad", "jaqket_v2", "xlsum_ja", "mgsm"}


def sha(x) -> str:
    data = x.encode("utf-8") if isinstance(x, str) else json.dumps(list(x)).encode()
    return hashlib.sha256(data).hexdigest()


def corpus(docs) -> list[str]:
    lines = []
    for splits in docs.values():
        for rows in splits.values():
            for r in rows:
                lines.extend(str(v) for v in r.values() if isinstance(v, str))
    extra = [
        "含意",
        "矛盾",
        "中立",
        "entailment",
        "contradiction",
        "neutral",
        "ポジティブ",
        "ネガティブ",
        "positive",
        "negative",
        "### 指示:\n",
        "### 入力:\n",
        "### 応答:\n",
        "ユーザー: ",
        "システム: ",
        "分かりました。",
        "<NL>",
        "[INST]",
        "[/INST]",
        "<<SYS>>",
        "<</SYS>>",
        "文脈：",
        "質問：",
        "回答：",
    ]
    return lines + extra * 20


def build_tokenizers(docs) -> None:
    """A sentencepiece T5-style tokenizer (byte fallback, no dummy prefix, newlines kept) and a
    byte-level BPE Llama-style one that adds <s>; both committed with the goldens."""
    import sentencepiece as spm
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    text = corpus(docs)
    out = TOKENIZERS / "spm_t5"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        prefix = f"{tmp}/spiece"
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(text),
            model_prefix=prefix,
            vocab_size=950,
            model_type="unigram",
            minloglevel=2,
            byte_fallback=True,
            character_coverage=0.98,
            normalization_rule_name="identity",
            remove_extra_whitespaces=False,
            add_dummy_prefix=False,
            split_by_whitespace=False,
            pad_id=0,
            eos_id=1,
            unk_id=2,
            bos_id=3,
            pad_piece="<pad>",
            eos_piece="</s>",
            unk_piece="<unk>",
            bos_piece="<s>",
            num_threads=1,
            seed_sentencepiece_size=100000,
            allow_whitespace_only_pieces=True,
            max_sentencepiece_length=8,
        )
        tok = transformers.T5Tokenizer(vocab_file=f"{prefix}.model", extra_ids=0, legacy=True)
        tok.save_pretrained(out)

    out = TOKENIZERS / "bpe_llama"
    out.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=900,
        special_tokens=["<unk>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(text, trainer=trainer)
    bpe.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    fast.save_pretrained(out)


def to_shunk031(family: str, rows: list[dict]) -> list[dict]:
    """Upstream rows as the shunk031/JGLUE loading script yields them (what jp-stable reads)."""
    if family == "jnli":
        labels = ["entailment", "contradiction", "neutral"]
        return [dict(r, label=labels.index(r["label"])) for r in rows]
    if family == "marc_ja":
        labels = ["positive", "negative", "neutral"]
        return [dict(r, label=labels.index(r["label"])) for r in rows]
    if family == "jsquad":
        return [
            dict(
                r,
                answers={
                    "text": [a["text"] for a in r["answers"]],
                    "answer_start": [a["answer_start"] for a in r["answers"]],
                },
            )
            for r in rows
        ]
    if family == "jaqket_v2":
        return [
            dict(r, answers=[{"text": a, "answer_start": -1} for a in r["answers"]])
            for r in parity_docs.kumapo_v2(rows)
        ]
    return rows


def kumapo_features():
    import datasets as ds

    return ds.Features(
        {
            "qid": ds.Value("string"),
            "question": ds.Value("string"),
            "answers": ds.Sequence({"text": ds.Value("string"), "answer_start": ds.Value("int32")}),
            "ctxs": ds.Sequence(
                {
                    "id": ds.Value("string"),
                    "title": ds.Value("string"),
                    "text": ds.Value("string"),
                    "score": ds.Value("float32"),
                    "has_answer": ds.Value("bool"),
                }
            ),
        }
    )


class Recorder:
    """What crosses jp-stable's model boundary, and which pool docs each prompt drew."""

    def __init__(self, lm, harness: str):
        self.lm, self.harness = lm, harness
        self.ll: list[dict] = []
        self.gen: list[dict] = []
        orig_ll = lm._loglikelihood_tokens

        def ll_tokens(requests, disable_tqdm=False):
            res = orig_ll(requests, disable_tqdm=disable_tqdm)
            for (key, ctx, cont), (logp, greedy) in zip(requests, res, strict=True):
                context, continuation = key
                self.ll.append(
                    {
                        "context": sha(context),
                        "context_tail": context[-40:],
                        "continuation": continuation,
                        "context_ids": sha(ctx),
                        "n_context_ids": len(ctx),
                        "continuation_ids": list(cont),
                        "logprob": logp,
                        "is_greedy": greedy,
                    }
                )
            return res

        lm._loglikelihood_tokens = ll_tokens
        orig_gen = lm._model_generate
        self._pending: list[dict] = []

        def model_generate(*args, **kwargs):
            out = orig_gen(*args, **kwargs)
            if harness == "hf-causal":
                context, max_length, eos_token_id = args
                ids = context[0].tolist()
                self._pending.append(
                    {
                        "context_ids": sha(ids),
                        "n_context_ids": len(ids),
                        "max_new_tokens": max_length - len(ids),
                        "stop_token_id": eos_token_id,
                        "generated_ids": out[0].tolist()[len(ids) :],
                    }
                )
            else:
                inputs, max_tokens, stop = kwargs["inputs"], kwargs["max_tokens"], kwargs["stop"]
                for row, mask in zip(
                    inputs["input_ids"].tolist(), inputs["attention_mask"].tolist(), strict=True
                ):
                    ids = [t for t, m in zip(row, mask, strict=True) if m]
                    self._pending.append(
                        {
                            "context_ids": sha(ids),
                            "n_context_ids": len(ids),
                            "max_new_tokens": max_tokens,
                            "stop": list(stop),
                        }
                    )
            return out

        lm._model_generate = model_generate
        orig_greedy = lm.greedy_until

        def greedy_until(requests):
            self._pending = []
            res = orig_greedy(requests)
            by_ids = {}
            for p in self._pending:
                by_ids.setdefault(p["context_ids"], p)
            for req, text in zip(requests, res, strict=True):
                context, until = req[0], req[1]
                ids = lm.tok_encode(context)
                rec = {
                    "context": sha(context),
                    "context_tail": context[-40:],
                    "until": list(until),
                    "max_gen_toks": req[2] if len(req) > 2 else None,
                    "output": text,
                }
                rec.update(
                    by_ids.get(
                        sha(ids),
                        {
                            "context_ids": sha(ids),
                            "n_context_ids": len(ids),
                            "note": "truncated context",
                        },
                    )
                )
                self.gen.append(rec)
            return res

        lm.greedy_until = greedy_until


def make_lm(harness: str, model_dir: Path, tok_dir: Path, use_fast: bool, batch_size: int):
    from lm_eval.models import gpt2, huggingface

    if harness == "hf-causal":
        return gpt2.HFLM(
            device="cpu",
            pretrained=str(model_dir),
            tokenizer=str(tok_dir),
            use_fast=use_fast,
            batch_size=batch_size,
        )
    return huggingface.AutoCausalLM(
        pretrained=str(model_dir),
        tokenizer=str(tok_dir),
        use_fast=use_fast,
        batch_size=batch_size,
        device="cpu",
    )


def run_task(lm, harness: str, task_name: str, family: str, num_fewshot: int, docs) -> dict:
    import datasets
    from lm_eval import evaluator, tasks

    cls = tasks.get_task(task_name)
    cls.download = lambda self, *a, **k: (
        None
    )  # documents are set below, offline (JAQKET overrides download)
    task = cls()
    features = kumapo_features() if family == "jaqket_v2" else None
    task.dataset = datasets.DatasetDict(
        {
            split: datasets.Dataset.from_list(to_shunk031(family, rows), features=features)
            for split, rows in docs[family].items()
        }
    )
    kept = {
        s: (parity_docs.kumapo_v2(r) if family == "jaqket_v2" else r)
        for s, r in docs[family].items()
    }
    pool_ids = [parity_docs.doc_id(family, r) for r in kept.get("train", [])]
    eval_ids = [
        parity_docs.doc_id(family, r) for r in kept["test" if "test" in kept else "validation"]
    ]
    drawn: list[list[str]] = []
    orig_fewshot = task.fewshot_examples

    def fewshot_examples(k, rnd, **kwargs):  # `stratified` exists from c10a2b8 on
        ex = orig_fewshot(k, rnd, **kwargs)
        pool = task._training_docs
        drawn.append([pool_ids[next(i for i, d in enumerate(pool) if d is e)] for e in ex])
        return ex

    task.fewshot_examples = fewshot_examples
    rec = Recorder(lm, harness)
    out = evaluator.evaluate(
        lm=lm, task_dict={task_name: task}, num_fewshot=num_fewshot, limit=None, bootstrap_iters=10
    )
    metrics = {k: v for k, v in out["results"][task_name].items() if not k.endswith("_stderr")}
    return {
        "task": task_name,
        "family": family,
        "num_fewshot": num_fewshot,
        "harness": harness,
        "version": out["versions"][task_name],
        "eval_docs": eval_ids,
        "pool_docs": pool_ids,
        "fewshot": drawn,
        "loglikelihood": rec.ll,
        "generate": rec.gen,
        "metrics": metrics,
    }


def metric_goldens(docs) -> dict:
    """jp-stable's JSQuAD EM/F1 for given predictions, and its balanced MC aggregations."""
    import datasets
    from lm_eval import metrics, tasks

    task = tasks.get_task("jsquad-1.1-0.2")()
    task.dataset = datasets.DatasetDict(
        {
            split: datasets.Dataset.from_list(to_shunk031("jsquad", rows))
            for split, rows in docs["jsquad"].items()
        }
    )
    agg = task.aggregation()
    squad = []
    for doc in task.validation_docs():
        for i, pred in enumerate(parity_docs.predictions_for(doc["answers"]["text"][0])):
            res = task.process_results(doc, [pred])
            squad.append(
                {
                    "doc": doc["id"],
                    "variant": i,
                    "exact_match": agg["exact_match"]([res["exact_match"]]),
                    "f1": agg["f1"]([res["f1"]]),
                }
            )
    items = [
        [(0, 0), (1, 1), (2, 2), (0, 1), (1, 0), (2, 0), (2, 1), (0, 0)],
        [(0, 0), (0, 0), (1, 0), (1, 1), (1, 1), (1, 0)],
        [(1, 0), (0, 1), (2, 1), (1, 2), (2, 2)],
    ]
    if not hasattr(metrics, "balanced_mean"):  # before c10a2b8
        return {"jsquad": squad, "balanced": []}
    balanced = [
        {
            "gold_pred": it,
            "balanced_acc": metrics.balanced_mean([(float(g == p), g) for g, p in it]),
            "mcc": metrics.matthews_corrcoef(it),
            "macro_f1": metrics.macro_f1(it),
        }
        for it in items
    ]
    return {"jsquad": squad, "balanced": balanced}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--jp-stable", required=True, help="extracted jp-stable revision")
    ap.add_argument("--rev", required=True, choices=sorted(TASKS))
    ap.add_argument(
        "--data", required=True, help="the JGLUE v1.1 directory (../shared/data/jglue-v1.1)"
    )
    ap.add_argument("--tasks", nargs="*", help="only these tasks")
    ap.add_argument("--metrics-only", action="store_true", help="only metrics.json")
    args = ap.parse_args()
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.path.insert(0, str(Path(args.jp_stable).resolve()))
    import lm_eval.base
    import transformers

    lm_eval.base.Task.download = lambda self, *a, **k: None  # documents are set below, offline
    hashlm.register()
    docs = parity_docs.load(args.data)
    if not (TOKENIZERS / "bpe_llama" / "tokenizer_config.json").is_file():
        build_tokenizers(docs)
    if not args.tasks:
        path = GOLDENS / args.rev / "metrics.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(metric_goldens(docs), ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
    if args.metrics_only:
        return
    with tempfile.TemporaryDirectory() as tmp:
        for tok_name, use_fast in TOKENIZER_USE_FAST.items():
            tok_dir = TOKENIZERS / tok_name
            model_dir = Path(tmp) / tok_name
            cfg_path = tok_dir / "hashlm.json"
            if not cfg_path.is_file():
                cfg = hashlm.config_for(
                    transformers.AutoTokenizer.from_pretrained(tok_dir, use_fast=use_fast)
                )
                cfg_path.write_text(json.dumps(cfg, indent=1) + "\n", encoding="utf-8")
            hashlm.save(model_dir, json.loads(cfg_path.read_text(encoding="utf-8")))
            for harness in ("hf-causal", "hf-causal-experimental"):
                for task_name, (family, k) in TASKS[args.rev].items():
                    if args.tasks and task_name not in args.tasks:
                        continue
                    if harness != "hf-causal" and family not in GEN_FAMILIES:
                        continue  # both harnesses score log-likelihoods alike
                    lm = make_lm(harness, model_dir, tok_dir, use_fast, batch_size=1)
                    golden = run_task(lm, harness, task_name, family, k, docs)
                    path = GOLDENS / args.rev / tok_name / harness / f"{task_name}.json"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(
                        json.dumps(golden, ensure_ascii=False, indent=1, sort_keys=True) + "\n",
                        encoding="utf-8",
                    )
                    print(path, golden["metrics"], flush=True)


if __name__ == "__main__":
    main()
