# Reports: model-card tables, radar charts, training curves, sweep plots, model cards.


rule report:
    input:
        unpack(report_inputs),
    output:
        index="results/reports/{report}/index.md",
    params:
        spec=report_spec,
        graph_models=report_models,
    log:
        "logs/reports/{report}.log",
    script:
        "../scripts/report.py"
