# Reports: model-card tables, radar charts, training curves, sweep plots, model cards.
from jaflow.report.check import check_report_specs
from jaflow.report.html import read_item
from jaflow.report.params import config_file_label, quiet
from jaflow.report.sweeps import report_sweep_points

# Unknown models, tasks, columns and averages of a report stop the run before any job.
check_report_specs(config, GRAPH)


def report_item_stage(wildcards, output):
    """Category of a page of the Snakemake report: the stage that made it (html/items.json)."""
    return read_item(output.html, wildcards.item)["stage"]


def report_item_labels(wildcards, output):
    return {"item": read_item(output.html, wildcards.item)["title"]}


def report_params(wildcards):
    """Everything the report job reads besides files; shown in the report's info panel by name only."""
    name = wildcards.report
    return quiet(
        {
            "spec": config["reports"][name],
            "models": report_models(wildcards),
            "facts": report_facts(wildcards),
            "sweep_points": report_sweep_points(config, name),
            "origin": {
                "report": name,
                "configfiles": [config_file_label(f) for f in workflow.configfiles],
            },
        },
        f"report '{name}' settings (config reports.{name}, model facts, sweep points)",
    )


rule report:
    input:
        unpack(report_inputs),
    output:
        index="results/reports/{report}/index.md",
        tables=directory("results/reports/{report}/tables"),
        plots=directory("results/reports/{report}/plots"),
        cards=directory("results/reports/{report}/cards"),
        html=report(
            directory("results/reports/{report}/html"),
            patterns=["{item}.html"],
            caption="../report/item.rst",
            category=report_item_stage,
            subcategory="report {report}",
            labels=report_item_labels,
        ),
    log:
        "logs/reports/{report}.log",
    conda:
        "../../envs/report.yaml"
    params:
        settings=report_params,
        seed=config["seed"],
    script:
        "../scripts/report.py"
