# Reports: model-card tables, radar charts, training curves, sweep plots, model cards.


rule report:
    input:
        unpack(report_inputs),
    output:
        index=L.report("{report}", "index.md"),
        tables=report(
            directory(L.report("{report}", "tables")),
            patterns=["{name}.csv"],
            caption="../report/tables.rst",
            category="{report}",
            subcategory="Tables",
            labels={"table": "{name}"},
        ),
        plots=report(
            directory(L.report("{report}", "plots")),
            patterns=["{name}.png"],
            caption="../report/plots.rst",
            category="{report}",
            subcategory="Plots",
            labels={"plot": "{name}"},
        ),
        cards=report(
            directory(L.report("{report}", "cards")),
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
        L.log("reports", "{report}"),
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/report.py"
