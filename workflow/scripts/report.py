"""Rule report: tables, plots, significance tests and model cards of one report of the config."""

from pathlib import Path

import jaflow.logs
from jaflow.report.build import build_report

with jaflow.logs.log_to(snakemake.log[0]):
    build_report(
        snakemake.params.spec,
        {k: list(snakemake.input[k]) for k in ("jglue", "mtbench", "log_history", "models", "manifests")},
        Path(snakemake.output.index).parent,
        models=list(snakemake.params.models),
        facts=snakemake.params.facts,
        seed=snakemake.params.seed,
    )
