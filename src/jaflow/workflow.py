"""What the workflow builds: every final output of an experiment, from its config and graph.

Paths come from the experiment's `jaflow.layout.Layout`; rules and `rule all` ask this module.
"""

from __future__ import annotations

from typing import Any

from jaflow.errors import ConfigError
from jaflow.evaluate.jglue.suites import jglue_suite_tasks
from jaflow.graph import BaseModel, MergedModel, ModelGraph, TrainedModel, is_local_path
from jaflow.layout import Layout

MTBENCH_ANSWER_KEYS = (
    "max_new_tokens",
    "num_choices",
    "batch_size",
    "top_p",
    "repetition_penalty",
    "temperature",
)
# mtbench.answer keys that change what a backend answers
MTBENCH_ANSWER_KEYS_BY_BACKEND = {
    "hf": ("backend",),
    "vllm": ("backend", "gpu_memory_utilization"),
    "openai": ("backend", "base_url", "endpoint", "served_models", "send_repetition_penalty"),
}
MTBENCH_JUDGE_SETTINGS = (
    "judge",
    "turns",
    "ref_categories",
    "batch_size",
    "strip_reasoning",
    "judge_prompts",
    "reference_answers",
)


def is_local_file(source: str | None) -> bool:
    return bool(source) and not str(source).startswith(("http://", "https://"))


def judge_id(judge: dict[str, Any]) -> str:
    """A path-safe name for the judge (its model name)."""
    return judge["model"].replace("/", "__")


def check_model_references(config: dict[str, Any], graph: ModelGraph) -> None:
    """Evaluations and reports may only name models of the graph."""
    named = [
        (f"jglue.runs.{i}.models", m)
        for i, r in enumerate(config["jglue"]["runs"])
        for m in r["models"]
    ]
    named += [("mtbench.models", m) for m in config["mtbench"]["models"]]
    pairwise = config["mtbench"]["pairwise"]
    if pairwise and not pairwise["answers"]:
        named.append(("mtbench.pairwise.baseline", pairwise["baseline"]))
    named += [
        (f"reports.{r}.models", m) for r, spec in config["reports"].items() for m in spec["models"]
    ]
    for key, model in named:
        if model not in graph.nodes:
            known = ", ".join(sorted(graph.nodes)) or "none"
            raise ConfigError(f"{key}: unknown model '{model}' (known: {known})")


class Targets:
    """Every final output the config asks for."""

    def __init__(self, config: dict[str, Any], graph: ModelGraph):
        check_model_references(config, graph)
        self.config = config
        self.graph = graph
        self.layout: Layout = graph.layout

    def built(self) -> list[str]:
        return self.graph.names(TrainedModel) + self.graph.names(MergedModel)

    def models(self) -> list[str]:
        return [self.layout.model(m) for m in self.built()]

    def datasets(self) -> list[str]:
        return [self.layout.dataset(d, "manifest.json") for d in self.config["datasets"]]

    def jglue(self) -> list[str]:
        runs = self.config["jglue"]["runs"]
        return [self.layout.jglue(r["suite"], m, "scores.csv") for r in runs for m in r["models"]]

    def mtbench(self) -> list[str]:
        mt = self.config["mtbench"]
        judge = judge_id(mt["judge"])
        out = [self.layout.mtbench_scores(mt["bench"], judge, m) for m in mt["models"]]
        if mt["pairwise"]:
            out += [
                self.layout.mtbench_pairwise(mt["bench"], judge, m, "csv")
                for m in mt["models"]
                if m != mt["pairwise"]["baseline"]
            ]
        return out

    def reports(self) -> list[str]:
        return [self.layout.report(r, "index.md") for r in self.config["reports"]]

    def report_models(self, report: str) -> list[str]:
        """Models a report covers: those it names, else every evaluated or built model."""
        named = self.config["reports"][report]["models"]
        if named:
            return list(named)
        evaluated = [m for r in self.config["jglue"]["runs"] for m in r["models"]]
        evaluated += self.config["mtbench"]["models"]
        return list(dict.fromkeys(evaluated + self.built()))

    def report_inputs(self, report: str) -> dict[str, list[str]]:
        """The tidy outputs of earlier stages that a report reads."""
        models = set(self.report_models(report))
        L = self.layout
        jglue = [
            L.jglue(r["suite"], m, "scores.csv")
            for r in self.config["jglue"]["runs"]
            for m in r["models"]
            if m in models
        ]
        mt = self.config["mtbench"]
        mtbench = [
            L.mtbench_scores(mt["bench"], judge_id(mt["judge"]), m)
            for m in mt["models"]
            if m in models
        ]
        trained = [m for m in self.graph.names(TrainedModel) if m in models]
        built = [m for m in self.built() if m in models]
        datasets = dict.fromkeys(self.graph[m].dataset for m in trained)
        return {
            "jglue": jglue,
            "mtbench": mtbench,
            "log_history": [L.train(m, "log_history.csv") for m in trained],
            "models": [L.model(m) for m in built],
            "manifests": [L.dataset(d, "manifest.json") for d in datasets],
        }

    def summary(self) -> str:
        """Where the outputs are, for the end of a run (also a run with nothing to do)."""
        L = self.layout
        lines = [f"jaflow outputs of experiment '{L.experiment}' (under {L.root}/):"]
        lines += [f"  dataset manifest: {p}" for p in self.datasets()]
        lines += [f"  model: {p}" for p in self.models()]
        lines += [f"  JGLUE scores: {p}" for p in self.jglue()]
        lines += [f"  MT-Bench scores: {p}" for p in self.mtbench()]
        for r in self.config["reports"]:
            lines.append(
                f"  report {r}: {L.report(r, '')} (index.md; tables/ md, csv, tex; plots/ png; "
                "cards/<model>/README.md; html/ one page per item)"
            )
        if self.config["reports"]:
            lines.append(
                "  HTML report of this run: snakemake --report report.html (with this run's --configfile), "
                "then open report.html in a browser"
            )
        lines.append(
            f"  job logs: {L.logs}/{L.experiment}/ (one file per job; .snakemake/log/ has Snakemake's own)"
        )
        return "\n".join(lines)

    def all(self) -> list[str]:
        return self.datasets() + self.models() + self.jglue() + self.mtbench() + self.reports()

    # -- what each job reads: the rules' input functions and params delegate here ------------

    def train_inputs(self, name: str) -> dict[str, Any]:
        node = self.graph[name]
        files = self.layout.dataset_files(node.dataset)
        return {
            "model": self.graph.model_inputs(node.parent),
            "train": files["train"],
            "validation": files["validation"],
        }

    def train_node(self, name: str) -> dict[str, Any]:
        node = self.graph[name]
        return {
            "name": node.name,
            "method": node.method,
            "dataset": node.dataset,
            "train": node.train,
            "select": node.select,
        }

    def train_resources(self, name: str) -> dict[str, int]:
        """GPUs in all and nodes of a training run (train.distributed)."""
        from jaflow.train.distributed import job_resources

        return job_resources(self.graph[name].train)

    def select_inputs(self, name: str) -> dict[str, Any]:
        node = self.graph[name]
        return {
            "log_history": self.layout.train(name, "log_history.csv"),
            "state": self.layout.train(name, "trainer_state.json"),
            "model": self.graph.model_inputs(node.parent),
        }

    def weights_checked(self) -> list[str]:
        """Base models whose config gives published checksums (rule verify_weights)."""
        return [n for n in self.graph.names(BaseModel) if self.graph[n].checksums]

    def weights_spec(self, name: str) -> dict[str, Any]:
        node = self.graph[name]
        return {
            "pretrained": node.pretrained,
            "revision": node.revision,
            "checksums": node.checksums,
            "key": f"models.{name}",
        }

    def merge_inputs(self, name: str) -> list[str]:
        return sorted({p for m in self.graph[name].deps for p in self.graph.model_inputs(m)})

    def merge_spec(self, name: str) -> dict[str, Any]:
        node = self.graph[name]
        return {
            "name": node.name,
            "base": dict(self.graph.hf_args(node.base), model=node.base),
            "experts": [dict(e, hf=self.graph.hf_args(e["model"])) for e in node.experts],
            "gate_mode": node.gate_mode,
            "experts_per_token": node.experts_per_token,
            "dtype": node.dtype,
        }

    def dataset_source_files(self, name: str) -> list[str]:
        """Local source files of a mix (hub sources are read by the job itself)."""
        return [s["path"] for s in self.config["datasets"][name]["sources"] if "path" in s]

    def jglue_suite(self, suite: str, model: str) -> list[dict[str, Any]]:
        """A suite's tasks for one model: a run's own template wins over jglue.template, so
        runs of one suite may differ per model (seed 002: 0.5 for the bilingual chat models,
        0.4 for the 3.6B one)."""
        jglue = self.config["jglue"]
        templates = [
            r["template"]
            for r in jglue["runs"]
            if r["suite"] == suite and model in r["models"] and r["template"]
        ]
        return jglue_suite_tasks(jglue, suite, templates[0] if templates else None)

    # -- JGLUE --------------------------------------------------------------------------------

    def jglue_data_source(self) -> str | list[str]:
        """Upstream JGLUE files (jglue.data_dir, checked at load; none when all come by URL)."""
        return self.config["jglue"]["data_dir"] or []

    def marc_ja_reviews(self) -> list[str]:
        marc = self.config["jglue"]["marc_ja"]
        return [marc["reviews"]] if marc else []

    def marc_ja_rebuilt(self) -> str | list[str]:
        """The rebuilt MARC-ja directory when jglue.marc_ja is set, else nothing."""
        return self.layout.marc_ja() if self.config["jglue"]["marc_ja"] else []

    def jglue_settings(self) -> dict[str, Any]:
        """Only what the job reads: a change to jglue.runs must not rerun every evaluation."""
        return {
            k: self.config["jglue"][k] for k in ("limit", "batch_size", "max_length", "cache_dir")
        }

    # -- MT-Bench -------------------------------------------------------------------------------

    def mtbench_answer_settings(self, model: str) -> dict[str, Any]:
        """Sampling keys and the answer backend's keys that change answers (not how it is asked:
        concurrency, timeouts and the key variable come from the config in the job)."""
        mt = self.config["mtbench"]
        answer = mt["answer"]
        shown = {k: answer[k] for k in MTBENCH_ANSWER_KEYS_BY_BACKEND[answer["backend"]]}
        if "served_models" in shown:  # this model's served name only
            shown["served_models"] = {
                m: n for m, n in answer["served_models"].items() if m == model
            }
        return {**{k: mt[k] for k in MTBENCH_ANSWER_KEYS}, "answer": shown}

    def mtbench_judge_settings(self) -> dict[str, Any]:
        """Everything the judge job reads from mtbench.* (never an input of the answer jobs)."""
        return {k: self.config["mtbench"][k] for k in MTBENCH_JUDGE_SETTINGS}

    def mtbench_questions(self) -> list[str]:
        source = self.config["mtbench"]["questions"]
        return [source] if is_local_file(source) else []

    def mtbench_judge_files(self) -> list[str]:
        """Local reference-answer and judge-prompt files (URLs are fetched by the job)."""
        mt = self.config["mtbench"]
        prompts = mt["judge_prompts"]
        if isinstance(prompts, dict):
            prompts = prompts["source"]
        return [s for s in (mt["reference_answers"], prompts) if is_local_file(s)]

    def check_judge_key(self) -> None:
        """An API judge's key variable must be set when the DAG is built, not after hours of
        answer generation (ConfigError naming mtbench.judge.api_key_env)."""
        from jaflow.evaluate.mtbench.backends import check_judge_env

        if self.config["mtbench"]["models"]:
            check_judge_env(self.config["mtbench"]["judge"])

    def mtbench_baseline_answers(self, bench: str) -> str:
        pairwise = self.config["mtbench"]["pairwise"]
        return pairwise["answers"] or self.layout.mtbench_answers(bench, pairwise["baseline"])

    def judge_model(self) -> str | None:
        """The graph model that judges MT-Bench (an hf judge trained or merged here), if any."""
        judge = self.config["mtbench"]["judge"]
        return (
            judge["model"]
            if judge["backend"] == "hf" and judge["model"] in self.graph.nodes
            else None
        )

    def judge_inputs(self) -> list[str]:
        name = self.judge_model()
        if name:
            return self.graph.model_inputs(name)
        judge = self.config["mtbench"]["judge"]
        if judge["backend"] == "hf" and is_local_path(judge["model"]):
            return [judge["model"]]
        return []

    def judge_hf_args(self) -> dict[str, Any] | None:
        name = self.judge_model()
        return self.graph.hf_args(name) if name else None


def summary_when_nothing_to_do(targets: Targets) -> None:
    """Print `targets.summary()` when Snakemake logs that it has nothing to do (a no-op rerun
    never reaches `onsuccess`). A Snakefile parsed again replaces its handler."""
    import logging

    from snakemake.common import NOTHING_TO_BE_DONE_MSG

    class SummaryHandler(logging.Handler):
        jaflow_summary = True

        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage() == NOTHING_TO_BE_DONE_MSG:
                print(targets.summary())

    logger = logging.getLogger("snakemake.logging")
    for old in [h for h in logger.handlers if getattr(h, "jaflow_summary", False)]:
        logger.removeHandler(old)
    logger.addHandler(SummaryHandler())
