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
        """Where the outputs are, for the end of a run."""
        lines = ["jaflow outputs:"]
        for d in self.config["datasets"]:
            lines.append(f"  dataset {d}: manifest {dataset_files(d)['manifest']}")
        lines += [f"  model: {p}" for p in self.models()]
        lines += [f"  JGLUE scores: {p}" for p in self.jglue()]
        lines += [f"  MT-Bench scores: {p}" for p in self.mtbench()]
        lines += [f"  report: {p}" for p in self.reports()]
        return "\n".join(lines)

    def all(self) -> list[str]:
        datasets = [dataset_files(d)["manifest"] for d in self.config["datasets"]]
        return datasets + self.models() + self.jglue() + self.mtbench() + self.reports()


# The JGLUE suite table lives in jaflow.evaluate.jglue.suites (re-exported here).
from jaflow.evaluate.jglue.suites import BUILTIN_SUITES, jglue_suite_tasks  # noqa: E402, F401
