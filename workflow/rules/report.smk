# Reports: model-card tables, radar charts, training curves, sweep plots, model cards; each item
# also as an HTML page, which the Snakemake report (--report) shows by stage.


rule report:
    input:
        unpack(report_inputs),
    output:
        index=L.report("{report}", "index.md"),
        tables=directory(L.report("{report}", "tables")),
        plots=directory(L.report("{report}", "plots")),
        cards=directory(L.report("{report}", "cards")),
        html=report(
            directory(L.report("{report}", "html")),
            patterns=["{item}.html"],
            caption="../report/item.rst",
            category=report_item_stage,
            subcategory="report {report}",
            labels=report_item_labels,
        ),
    log:
        L.log("reports", "{report}"),
    conda:
        "../../envs/report.yaml"
    params:
        settings=report_params,
        seed=config["seed"],
    script:
        "../scripts/report.py"
