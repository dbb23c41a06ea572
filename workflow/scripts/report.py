"""Rule report: tables, plots, significance tests, model cards and HTML pages of one report."""

from pathlib import Path

import jaflow.logs
from jaflow.report.build import build_report

with jaflow.logs.log_to(snakemake.log[0]):
    s = snakemake.params.settings
    build_report(
        s["spec"],
        {
            k: list(snakemake.input[k])
            for k in ("jglue", "mtbench", "log_history", "models", "manifests")
        },
        Path(snakemake.output.index).parent,
        models=list(s["models"]),
        facts=s["facts"],
        seed=snakemake.params.seed,
        sweep_points=s["sweep_points"],
        origin=s["origin"],
    )
