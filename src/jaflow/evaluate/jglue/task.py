"""lm-eval hooks for the jp-stable task family: per-task functions and the task class.

Task YAMLs (generated, under workflow/tasks/) refer to these through
`workflow/tasks/jglue_utils.py` (`!function jglue_utils.<task>__doc_to_text`, ...).
`JpStableTask` adds what lm-eval 0.4 does differently from jp-stable:
- evaluation order: jp-stable shuffles the evaluation documents with `Random(42)` and takes the
  first `limit`; the same generator then draws every document's few-shot examples in turn
  (`rnd.sample(train, k)`, or label-stratified for JNLI 1.3). `JpStableSampler` replays that.
- generation caps per document: JSQuAD/JAQKET generate at most the longest gold answer's token
  count, XL-Sum the summary's + 10 (jp-stable's DYNAMIC_MAX_LENGTH), measured with the model's
  tokenizer (lm-eval passes the model arguments to tasks as metadata).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any

from lm_eval.api.samplers import ContextSampler
from lm_eval.api.task import ConfigurableTask

from jaflow.evaluate.jglue import metrics
from jaflow.evaluate.jglue.templates import TEMPLATES, TaskTemplate, get_template

JP_STABLE_SEED = 42


def py_name(task: str) -> str:
    """`jsquad-1.1-0.3` -> `jsquad_1_1_0_3` (a Python identifier for hook names)."""
    return task.replace("-", "_").replace(".", "_")


def jp_stable_order(n: int) -> tuple[list[int], random.Random]:
    """jp-stable's evaluation order of n documents, and its generator after the shuffle."""
    rnd = random.Random(JP_STABLE_SEED)
    order = list(range(n))
    rnd.shuffle(order)
    return order, rnd


def stratified_sample(
    docs: Sequence[dict], k: int, rnd: random.Random, stratum: Callable[[dict], str]
) -> list[dict]:
    """jp-stable's `_stratified_fewshot_examples`: k examples in the pool's label ratios."""
    by_target: dict[str, list[dict]] = {}
    for d in docs:
        by_target.setdefault(stratum(d), []).append(d)
    counts = {t: int(len(v) / len(docs) * k) for t, v in by_target.items()}
    for _ in range(k - sum(counts.values())):
        counts[min(counts, key=counts.get)] += 1
    samples: list[dict] = []
    for t, n in counts.items():
        samples.extend(rnd.sample(by_target[t], n))
    rnd.shuffle(samples)
    return samples


class JpStableSampler(ContextSampler):
    """Few-shot examples drawn as jp-stable draws them (see the module docstring).

    `trace`, when a list, receives each draw's document ids (the parity test reads it)."""

    trace: list[list[str]] | None = None

    def __init__(
        self, df=None, *, n_eval: int = 0, stratum: Callable[[dict], str] | None = None, **kwargs
    ):
        super().__init__(df, rnd=None, **kwargs)
        self.n_eval, self.stratum = n_eval, stratum
        self.set_rnd(None)

    def set_rnd(self, rnd: int | None = None):
        # The seed is jp-stable's fixed 42, not lm-eval's fewshot_random_seed.
        self.rnd = jp_stable_order(self.n_eval)[1]
        return self

    def sample(self, n: int, eval_doc=None, df=None, **kwargs):
        if n == 0:
            return []
        docs = self.fewshot_docs()
        drawn = (
            stratified_sample(docs, n, self.rnd, self.stratum)
            if self.stratum is not None
            else self.rnd.sample(docs, n)
        )
        if self.trace is not None:
            self.trace.append([str(d["id"]) for d in drawn])
        return drawn


class JpStableTask(ConfigurableTask):
    """A ConfigurableTask (YAML-configured) with jp-stable's order, sampler and generation caps."""

    def __init__(self, config: dict[str, Any] | None = None, **kwargs):
        config = {k: v for k, v in (config or {}).items() if k != "class"}
        self.spec: TaskTemplate = get_template(config["metadata"]["jp_stable_task"])
        super().__init__(config=config)
        fewshot = self.fewshot_docs()
        if fewshot is not None:
            stratum = self.spec.target if self.spec.stratified else None
            self.sampler = JpStableSampler(
                list(fewshot), n_eval=len(self.eval_docs), stratum=stratum
            )

    def _ordered(self, docs):
        if docs is None:
            return None
        return docs.select(jp_stable_order(len(docs))[0])

    def validation_docs(self):
        return self._ordered(super().validation_docs())

    def test_docs(self):
        return self._ordered(super().test_docs())

    def set_fewshot_seed(self, seed: int | None = None) -> None:
        self.fewshot_rnd = random.Random(seed)
        if hasattr(self, "sampler"):
            self.sampler.set_rnd(None)

    @cached_property
    def _tokenizer(self):
        """The evaluated model's tokenizer, loaded as the model is (`jaflow.hf.load_tokenizer`)."""
        meta = self.config.metadata or {}
        if not isinstance(meta.get("tokenizer"), str):
            return None
        from jaflow.hf import load_tokenizer

        return load_tokenizer(
            {
                "pretrained": meta["pretrained"],
                "tokenizer": meta["tokenizer"],
                "use_fast": meta["use_fast"],
                "trust_remote_code": meta["trust_remote_code"],
            }
        )

    def max_gen_toks(self, doc: dict) -> int | None:
        """jp-stable's per-document generation cap, or None to keep the YAML's."""
        tok = self._tokenizer
        if tok is None or self.spec.max_gen not in ("answer", "summary+10"):
            return None

        def n_tokens(text: str) -> int:
            return len(tok.encode(text, add_special_tokens=False))

        if self.spec.max_gen == "answer":
            return max(n_tokens(a) for a in doc["answers"])
        return n_tokens(doc["summary"]) + 10

    def construct_requests(self, doc, ctx, **kwargs):
        req = super().construct_requests(doc, ctx, **kwargs)
        if self.OUTPUT_TYPE != "generate_until":
            return req
        context, gen = req.arguments[0], dict(req.arguments[1])
        if (n := self.max_gen_toks(doc)) is not None:
            gen["max_gen_toks"] = max(1, n)
        if self.spec.stop_eos_first and self._tokenizer is not None and self._tokenizer.eos_token:
            gen["until"] = [
                self._tokenizer.eos_token,
                *gen["until"],
            ]  # jp-stable's MGSM: [eos, "\n"]
        req.arguments = (context, gen)
        return req


# -- per-document hooks -----------------------------------------------------------------------


def process_results(spec: TaskTemplate, doc: dict, results: list) -> dict[str, Any]:
    if spec.kind == "gen":
        out = results[0]
        if spec.family in ("jsquad", "jaqket_v2"):
            return {
                "exact_match": metrics.exact_match(out, doc["answers"]),
                "f1": metrics.f1(out, doc["answers"]),
            }
        if spec.family == "xlsum_ja":
            return {"rouge2": metrics.rouge2(out, doc["summary"])}
        return {"acc": float(metrics.last_number(out) == doc["answer_number"])}
    lls = [r[0] for r in results]
    if spec.kind == "winograd":
        gold = int(doc["answer"])
        return {"acc": float((gold == 1 and lls[0] > lls[1]) or (gold == 2 and lls[1] > lls[0]))}
    gold = int(doc["label"])
    pred = max(range(len(lls)), key=lls.__getitem__)
    lengths = [len(c) for c in spec.choice_list(doc)]
    pred_norm = max(range(len(lls)), key=lambda i: lls[i] / lengths[i])
    acc = float(pred == gold)
    out: dict[str, Any] = {"acc": acc, "acc_norm": float(pred_norm == gold)}
    if spec.balanced_metrics:
        out.update(balanced_acc=(acc, gold), mcc=(gold, pred), macro_f1=(gold, pred))
    return out


def hooks_for(spec: TaskTemplate) -> dict[str, Callable]:
    """The functions a task YAML names, keyed by hook."""
    if spec.kind == "mc":

        def target(d):
            return int(d["label"])
    elif spec.kind == "winograd":

        def target(d):
            return int(d["answer"]) - 1
    else:
        target = spec.target
    hooks: dict[str, Callable] = {
        "doc_to_text": spec.text,
        "doc_to_target": target,
        "fewshot_target": spec.target,
        "process_results": lambda doc, results: process_results(spec, doc, results),
    }
    if spec.kind == "mc":
        hooks["doc_to_choice"] = spec.choice_list
    if spec.kind == "winograd":
        hooks["doc_to_choice"] = lambda d: [d["sentence1"], d["sentence2"]]
    if spec.fewshot_text is not None:
        hooks["fewshot_text"] = spec.fewshot_text
    return hooks


def exported_hooks() -> dict[str, Any]:
    """Everything `workflow/tasks/jglue_utils.py` exports: `<task>__<hook>` and the class."""
    out: dict[str, Any] = {
        "JpStableTask": JpStableTask,
        "balanced_mean": metrics.balanced_mean,
        "macro_f1": metrics.macro_f1,
        "mcc": metrics.mcc,
    }
    for name, spec in TEMPLATES.items():
        for hook, fn in hooks_for(spec).items():
            out[f"{py_name(name)}__{hook}"] = fn
    return out
