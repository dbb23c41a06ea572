# Wiring: the experiment (config checked, graph built, paths laid out) and the input functions
# rules use. Policy lives in the jaflow package: jaflow.config, jaflow.workflow, jaflow.layout.
import re

from snakemake.utils import validate

from jaflow.config import canonical, load_experiment, validate_config
from jaflow.graph import MergedModel
from jaflow.report.check import check_report_specs
from jaflow.workflow import Targets, summary_when_nothing_to_do

SCHEMA = workflow.source_path("../../config/schema.yaml")
# jaflow's own check first: its errors name the key path (models.x.train.lora_r: ...).
validate_config(config, SCHEMA)
# Snakemake's own check, without its default filling (that one shares default objects between
# keys and crashes on nullable objects whose properties have defaults; jaflow filled them above).
validate(config, SCHEMA, set_default=False)
EXPERIMENT = load_experiment(config, workflow.configfiles, SCHEMA)
GRAPH = EXPERIMENT.graph
L = EXPERIMENT.layout
TARGETS = Targets(config, GRAPH)
TARGETS.check_judge_key()
# unknown models, tasks, columns and averages of a report stop the run before any job
check_report_specs(config, GRAPH)


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
    base=names_regex(TARGETS.weights_checked()),


def params(fn):
    """A params function whose value Snakemake compares independent of dict key order."""
    return lambda wildcards: canonical(fn(wildcards))


def wildcard_model(wildcards):
    """The model a job is about: its {model}, {trained} or {merged} wildcard."""
    return (
        getattr(wildcards, "model", None)
        or getattr(wildcards, "trained", None)
        or wildcards.merged
    )


def model_inputs(wildcards):
    return GRAPH.model_inputs(wildcard_model(wildcards))


def weights_local_dir(wildcards):
    return GRAPH.base_dir(wildcards.base)


hf_args = params(lambda w: GRAPH.hf_args(wildcard_model(w)))
parent_hf_args = params(lambda w: GRAPH.hf_args(GRAPH[w.trained].parent))
train_node = params(lambda w: TARGETS.train_node(w.trained))
merge_spec = params(lambda w: TARGETS.merge_spec(w.merged))
dataset_spec = params(lambda w: config["datasets"][w.dataset])
jglue_suite = params(lambda w: TARGETS.jglue_suite(w.suite, w.model))
chat_format = params(lambda w: GRAPH.chat_format(w.model))
report_models = params(lambda w: TARGETS.report_models(w.report))


jglue_settings = params(lambda w: TARGETS.jglue_settings())
mtbench_answer_settings = params(lambda w: TARGETS.mtbench_answer_settings(w.model))
mtbench_judge_settings = params(lambda w: TARGETS.mtbench_judge_settings())
mtbench_judge_hf_args = params(lambda w: TARGETS.judge_hf_args())


def jglue_data_source(wildcards):
    return TARGETS.jglue_data_source()


def marc_ja_reviews(wildcards):
    return TARGETS.marc_ja_reviews()


def marc_ja_rebuilt(wildcards):
    return TARGETS.marc_ja_rebuilt()


def mtbench_questions(wildcards):
    return TARGETS.mtbench_questions()


def mtbench_judge_files(wildcards):
    return TARGETS.mtbench_judge_files()


def mtbench_judge_inputs(wildcards):
    return TARGETS.judge_inputs()


def mtbench_baseline_answers(wildcards):
    return TARGETS.mtbench_baseline_answers(wildcards.bench)


def train_inputs(wildcards):
    return TARGETS.train_inputs(wildcards.trained)


def train_gpus(wildcards):
    return TARGETS.train_resources(wildcards.trained)["gpu"]


def train_nodes(wildcards):
    return TARGETS.train_resources(wildcards.trained)["nodes"]


def select_inputs(wildcards):
    return TARGETS.select_inputs(wildcards.trained)


def merge_inputs(wildcards):
    return TARGETS.merge_inputs(wildcards.merged)


def merge_adapter(wildcards):
    return GRAPH.merges_adapter(wildcards.trained)


def dataset_source_files(wildcards):
    return TARGETS.dataset_source_files(wildcards.dataset)


def report_inputs(wildcards):
    return TARGETS.report_inputs(wildcards.report)


@params
def report_facts(wildcards):
    """What the model cards of a report say about each trained or merged model."""
    from jaflow.report.cards import model_facts

    return model_facts(GRAPH, config, TARGETS.report_models(wildcards.report))


def report_item_stage(wildcards, output):
    """Category of a page of the Snakemake report: the stage that made it (html/items.json)."""
    from jaflow.report.html import read_item

    return read_item(output.html, wildcards.item)["stage"]


def report_item_labels(wildcards, output):
    from jaflow.report.html import read_item

    return {"item": read_item(output.html, wildcards.item)["title"]}


def report_params(wildcards):
    """Everything the report job reads besides files; shown in the report's info panel by name."""
    from jaflow.report.params import config_file_label, quiet
    from jaflow.report.sweeps import report_sweep_points

    name = wildcards.report
    settings = {
        "spec": config["reports"][name],
        "models": report_models(wildcards),
        "facts": report_facts(wildcards),
        "sweep_points": report_sweep_points(config, name),
        "origin": {
            "experiment": EXPERIMENT.name,
            "report": name,
            "configfiles": [config_file_label(f) for f in workflow.configfiles],
        },
    }
    return quiet(
        canonical(settings),
        f"report '{name}' settings (experiment '{EXPERIMENT.name}', config reports.{name}, model facts, sweep points)",
    )
