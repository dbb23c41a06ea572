"""What the workflow builds: the output paths of every stage, from config and graph.

Rules and `rule all` ask this module, so paths are spelled in one place.
"""

from __future__ import annotations

from typing import Any

from jaflow.graph import MergedModel, ModelGraph, TrainedModel

DATASET_FILES = ("train.jsonl", "validation.jsonl", "manifest.json")


def dataset_files(name: str) -> dict[str, str]:
    return {f.split(".")[0]: f"results/datasets/{name}/{f}" for f in DATASET_FILES}


def jglue_scores(suite: str, model: str) -> str:
    return f"results/jglue/{suite}/{model}/scores.csv"


def mtbench_scores(bench: str, judge: str, model: str) -> str:
    return f"results/mtbench/{bench}/scores/{judge}/{model}.csv"


def mtbench_pairwise_scores(bench: str, judge: str, model: str) -> str:
    return f"results/mtbench/{bench}/pairwise/{judge}/{model}.csv"


def judge_id(judge: dict[str, Any]) -> str:
    """A path-safe name for the judge (its model name)."""
    return judge["model"].replace("/", "__")


def report_index(report: str) -> str:
    return f"results/reports/{report}/index.md"


def check_model_references(config: dict[str, Any], graph: ModelGraph) -> None:
    """Evaluations and reports may only name models of the graph."""
    from jaflow.errors import ConfigError

    named = [(f"jglue.runs.{i}.models", m) for i, r in enumerate(config["jglue"]["runs"]) for m in r["models"]]
    named += [("mtbench.models", m) for m in config["mtbench"]["models"]]
    pairwise = config["mtbench"]["pairwise"]
    if pairwise and not pairwise.get("answers"):
        named.append(("mtbench.pairwise.baseline", pairwise["baseline"]))
    named += [(f"reports.{r}.models", m) for r, spec in config["reports"].items() for m in spec["models"]]
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

    def models(self) -> list[str]:
        return [f"results/models/{m}" for m in self.graph.names(TrainedModel) + self.graph.names(MergedModel)]

    def jglue(self) -> list[str]:
        runs = self.config["jglue"]["runs"]
        return [jglue_scores(r["suite"], m) for r in runs for m in r["models"]]

    def mtbench(self) -> list[str]:
        mt = self.config["mtbench"]
        out = [mtbench_scores(mt["bench"], judge_id(mt["judge"]), m) for m in mt["models"]]
        if mt["pairwise"]:
            out += [mtbench_pairwise_scores(mt["bench"], judge_id(mt["judge"]), m)
                    for m in mt["models"] if m != mt["pairwise"]["baseline"]]
        return out

    def reports(self) -> list[str]:
        return [report_index(r) for r in self.config["reports"]]

    def report_models(self, report: str) -> list[str]:
        """Models a report covers: those it names, else every evaluated or built model."""
        named = self.config["reports"][report]["models"]
        if named:
            return list(named)
        evaluated = [m for r in self.config["jglue"]["runs"] for m in r["models"]]
        evaluated += self.config["mtbench"]["models"]
        built = self.graph.names(TrainedModel) + self.graph.names(MergedModel)
        return list(dict.fromkeys(evaluated + built))

    def report_inputs(self, report: str) -> dict[str, list[str]]:
        """The tidy outputs of earlier stages that a report reads."""
        models = set(self.report_models(report))
        jglue = [
            jglue_scores(r["suite"], m) for r in self.config["jglue"]["runs"] for m in r["models"] if m in models
        ]
        mt = self.config["mtbench"]
        mtbench = [
            mtbench_scores(mt["bench"], judge_id(mt["judge"]), m) for m in mt["models"] if m in models
        ]
        trained = [m for m in self.graph.names(TrainedModel) if m in models]
        built = trained + [m for m in self.graph.names(MergedModel) if m in models]
        datasets = dict.fromkeys(self.graph[m].dataset for m in trained)
        return {
            "jglue": jglue,
            "mtbench": mtbench,
            "log_history": [f"results/train/{m}/log_history.csv" for m in trained],
            "models": [f"results/models/{m}" for m in built],
            "manifests": [dataset_files(d)["manifest"] for d in datasets],
        }

    def summary(self) -> str:
        """Where the outputs are, for the end of a run (also a run with nothing to do)."""
        import posixpath

        lines = ["jaflow outputs:"]
        for d in self.config["datasets"]:
            lines.append(f"  dataset {d}: manifest {dataset_files(d)['manifest']}")
        lines += [f"  model: {p}" for p in self.models()]
        lines += [f"  JGLUE scores: {p}" for p in self.jglue()]
        lines += [f"  MT-Bench scores: {p}" for p in self.mtbench()]
        for r in self.config["reports"]:
            folder = posixpath.dirname(report_index(r))
            lines.append(f"  report {r}: {folder}/ (index.md; tables/ md, csv, tex; plots/ png; cards/<model>/README.md; "
                         "html/ one page per item)")
        if self.config["reports"]:
            lines.append("  HTML report of this run: snakemake --report report.html (with this run's --configfile), "
                         "then open report.html in a browser")
        lines.append("  job logs: logs/ (one file per job; .snakemake/log/ has Snakemake's own)")
        return "\n".join(lines)

    def all(self) -> list[str]:
        datasets = [dataset_files(d)["manifest"] for d in self.config["datasets"]]
        return datasets + self.models() + self.jglue() + self.mtbench() + self.reports()


# Built-in suites: (task family, version, few-shot) in the order the cards print them.
BUILTIN_SUITES: dict[str, list[dict[str, Any]]] = {
    "jglue4": [
        {"task": "jsquad", "version": "1.1", "num_fewshot": 2},
        {"task": "jcommonsenseqa", "version": "1.1", "num_fewshot": 3},
        {"task": "jnli", "version": "1.3", "num_fewshot": 3},
        {"task": "marc_ja", "version": "1.1", "num_fewshot": 3},
    ],
}
BUILTIN_SUITES["jglue6"] = BUILTIN_SUITES["jglue4"] + [
    {"task": "xwinograd_ja", "version": None, "num_fewshot": 0},
    {"task": "jaqket_v2", "version": "0.2", "num_fewshot": 1},
]
# ja8 of the jp-stable harness, in the weblab card's order: 3,3,3,2,1,1,0,5.
BUILTIN_SUITES["jglue8"] = [
    {"task": "jcommonsenseqa", "version": "1.1", "num_fewshot": 3},
    {"task": "jnli", "version": "1.3", "num_fewshot": 3},
    {"task": "marc_ja", "version": "1.1", "num_fewshot": 3},
    {"task": "jsquad", "version": "1.1", "num_fewshot": 2},
    {"task": "jaqket_v2", "version": "0.2", "num_fewshot": 1},
    {"task": "xlsum_ja", "version": "1.0", "num_fewshot": 1},
    {"task": "xwinograd_ja", "version": None, "num_fewshot": 0},
    {"task": "mgsm", "version": "1.0", "num_fewshot": 5},
]


def jglue_suite_tasks(jglue: dict[str, Any], suite: str, template: str | None = None) -> list[dict[str, Any]]:
    """The task list of a suite: config overrides first, then the built-in ones."""
    from jaflow.errors import ConfigError

    tasks = jglue["suites"].get(suite) or BUILTIN_SUITES.get(suite)
    if tasks is None:
        known = sorted(set(BUILTIN_SUITES) | set(jglue["suites"]))
        raise ConfigError(f"jglue.runs: unknown suite '{suite}' (known: {known})")
    default_template = template or jglue["template"]
    return [dict({"template": default_template, "metric": None}, **{k: v for k, v in t.items() if v is not None or k == "version"}) for t in tasks]
