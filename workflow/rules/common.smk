# Config validation, the model graph, and the input functions every stage uses.
import re
from pathlib import Path

from snakemake.utils import validate

from jaflow.config import validate_config
from jaflow.graph import MergedModel, ModelGraph, TrainedModel, is_local_path
from jaflow.sweep import expand_sweeps
from jaflow.workflow import Targets

# jaflow's own check first: its errors name the key path (models.x.train.lora_r: ...).
# Sweeps expand after both checks (each point is checked as it is made), so the points of a
# large sweep are not validated again as a whole.
validate_config(config, workflow.source_path("../../config/schema.yaml"))
# Snakemake's own check, without its default filling: that one shares default objects between
# keys and crashes on nullable objects whose properties have defaults. jaflow filled them above.
validate(config, workflow.source_path("../../config/schema.yaml"), set_default=False)
expand_sweeps(config)

GRAPH = ModelGraph.from_config(config)
TARGETS = Targets(config, GRAPH)


def names_regex(names):
    return "|".join(sorted(map(re.escape, names))) or "__none__"


wildcard_constraints:
    dataset=names_regex(config["datasets"]),
    model=r"[^/]+",
    # any name but a merge's: listing every training run made each pattern as long as a sweep
    trained=rf"(?!(?:{names_regex(GRAPH.names(MergedModel))})(?:/|$))[^/]+",
    merged=names_regex(GRAPH.names(MergedModel)),
    suite=r"[^/]+",
    judge=r"[^/]+",
    report=names_regex(config["reports"]),


def all_targets():
    return TARGETS.all()


def wildcard_model(wildcards):
    """The model a job is about: its {model}, {trained} or {merged} wildcard."""
    return getattr(wildcards, "model", None) or getattr(wildcards, "trained", None) or wildcards.merged


def model_inputs(wildcards):
    """Files a job on the wildcard's model waits for."""
    return GRAPH.model_inputs(wildcard_model(wildcards))


def hf_args(wildcards):
    return GRAPH.hf_args(wildcard_model(wildcards))


def train_inputs(wildcards):
    node = GRAPH[wildcards.trained]
    return {
        "model": GRAPH.model_inputs(node.parent),
        "train": f"results/datasets/{node.dataset}/train.jsonl",
        "validation": f"results/datasets/{node.dataset}/validation.jsonl",
    }


def parent_hf_args(wildcards):
    return GRAPH.hf_args(GRAPH[wildcards.trained].parent)


def merge_inputs(wildcards):
    node = GRAPH[wildcards.merged]
    return sorted({p for m in node.deps for p in GRAPH.model_inputs(m)})


def merge_spec(wildcards):
    node = GRAPH[wildcards.merged]
    return {
        "name": node.name,
        "base": dict(GRAPH.hf_args(node.base), model=node.base),
        "experts": [dict(e, **{"hf": GRAPH.hf_args(e["model"])}) for e in node.experts],
        "gate_mode": node.gate_mode,
        "experts_per_token": node.experts_per_token,
        "dtype": node.dtype,
    }


def dataset_spec(wildcards):
    return config["datasets"][wildcards.dataset]


def dataset_source_files(wildcards):
    """Local source files of a mix (hub sources are read by the job itself)."""
    return [s["path"] for s in dataset_spec(wildcards)["sources"] if "path" in s]


def train_node(wildcards):
    node = GRAPH[wildcards.trained]
    return {"name": node.name, "method": node.method, "dataset": node.dataset, "train": node.train, "select": node.select}


def select_inputs(wildcards):
    node = GRAPH[wildcards.trained]
    return {
        "log_history": f"results/train/{node.name}/log_history.csv",
        "state": f"results/train/{node.name}/trainer_state.json",
        "model": GRAPH.model_inputs(node.parent),
    }


def merge_adapter(wildcards):
    return not GRAPH.is_adapter(wildcards.trained) and GRAPH[wildcards.trained].method in ("qlora", "lora")


def jglue_data_source(wildcards):
    """Upstream JGLUE files: jglue.data_dir, else the tiny world's."""
    return config["jglue"]["data_dir"] or "results/tiny/jglue"


def jglue_settings():
    return {k: config["jglue"][k] for k in ("limit", "batch_size", "max_length", "cache_dir")}


def jglue_suite(wildcards):
    from jaflow.workflow import jglue_suite_tasks

    # a run's own template wins over jglue.template; runs of one suite may differ per model
    # (seed 002: 0.5 for the bilingual chat models, 0.4 for the 3.6B one, 0.3 for base models)
    templates = [
        r["template"] for r in config["jglue"]["runs"]
        if r["suite"] == wildcards.suite and wildcards.model in r["models"] and r.get("template")
    ]
    return jglue_suite_tasks(config["jglue"], wildcards.suite, templates[0] if templates else None)


def chat_format(wildcards):
    return GRAPH.chat_format(wildcards.model)


def mtbench_sources(wildcards=None):
    """Question, reference and judge-prompt files (local paths or URLs; null prompts = jaflow's)."""
    mt = config["mtbench"]
    return {
        "questions": mt["questions"] or "results/tiny/mtbench/question.jsonl",
        "reference_answers": mt["reference_answers"],
        "judge_prompts": mt["judge_prompts"],
    }


def _local(source):
    return bool(source) and not str(source).startswith(("http://", "https://"))


MTBENCH_ANSWER_KEYS = ("max_new_tokens", "num_choices", "batch_size", "top_p", "repetition_penalty", "temperature")
MTBENCH_JUDGE_KEYS = ("judge", "turns", "ref_categories", "batch_size")


def mtbench_answer_params(wildcards):
    """Only what changes the answers, so a judge setting never regenerates them."""
    return {k: config["mtbench"][k] for k in MTBENCH_ANSWER_KEYS}


def mtbench_judge_params(wildcards):
    return {k: config["mtbench"][k] for k in MTBENCH_JUDGE_KEYS}


def mtbench_questions(wildcards):
    source = mtbench_sources()["questions"]
    return source if _local(source) else []


def mtbench_judge_files(wildcards):
    sources = mtbench_sources()
    return [sources[k] for k in ("reference_answers", "judge_prompts") if _local(sources[k])]


def _judge_model_name():
    judge = config["mtbench"]["judge"]
    return judge["model"] if judge["backend"] == "hf" and judge["model"] in GRAPH.nodes else None


def mtbench_judge_inputs(wildcards):
    name = _judge_model_name()
    if name:
        return GRAPH.model_inputs(name)
    judge = config["mtbench"]["judge"]
    return [judge["model"]] if judge["backend"] == "hf" and is_local_path(judge["model"]) else []


def mtbench_judge_hf_args(wildcards):
    name = _judge_model_name()
    return GRAPH.hf_args(name) if name else None


def mtbench_baseline_answers(wildcards):
    pairwise = config["mtbench"]["pairwise"]
    return pairwise.get("answers") or (
        f"results/mtbench/{wildcards.bench}/model_answer/{pairwise['baseline']}.jsonl"
    )


def report_spec(wildcards):
    return config["reports"][wildcards.report]


def report_models(wildcards):
    return TARGETS.report_models(wildcards.report)


def report_inputs(wildcards):
    return TARGETS.report_inputs(wildcards.report)


def report_facts(wildcards):
    """What the model cards of a report say about each trained or merged model."""
    from jaflow.report.cards import model_facts

    return model_facts(GRAPH, config, TARGETS.report_models(wildcards.report))
