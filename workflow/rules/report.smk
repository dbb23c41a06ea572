# Reports: model-card tables, radar charts, training curves, sweep plots, model cards.


rule report:
    input:
        unpack(report_inputs),
    output:
        index="results/reports/{report}/index.md",
        tables=report(
            directory("results/reports/{report}/tables"),
            patterns=["{name}.csv"],
            caption="../report/tables.rst",
            category="{report}",
            subcategory="Tables",
            labels={"table": "{name}"},
        ),
        plots=report(
            directory("results/reports/{report}/plots"),
            patterns=["{name}.png"],
            caption="../report/plots.rst",
            category="{report}",
            subcategory="Plots",
            labels={"plot": "{name}"},
        ),
        cards=report(
            directory("results/reports/{report}/cards"),
            patterns=["{model}/README.md"],
            caption="../report/cards.rst",
            category="{report}",
            subcategory="Model cards",
            labels={"model": "{model}"},
        ),
    params:
        spec=report_spec,
        models=report_models,
        facts=report_facts,
        seed=config["seed"],
    log:
        "logs/reports/{report}.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/report.py"
