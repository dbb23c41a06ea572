# jaflow: train-then-evaluate experiments on Japanese LLMs.
# Wiring only: every rule's logic lives in the jaflow package (src/jaflow).
import os

from snakemake.utils import min_version

min_version("9.0")


# The demo config is the default only when no --configfile/--config is given: an experiment
# config stands alone rather than merging into the demo's models.
if not config:

    configfile: os.path.join(workflow.basedir, "config", "config.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/tiny.smk"
include: "workflow/rules/weights.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/merge.smk"
include: "workflow/rules/marc_ja.smk"
include: "workflow/rules/jglue.smk"
include: "workflow/rules/mtbench.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/user_data.smk"


# Seconds of CPU on small tables: run on the submitting host, not through a cluster queue.
localrules:
    report,


rule all:
    default_target: True
    input:
        TARGETS.all(),


onsuccess:
    print(TARGETS.summary())


# A run with nothing to do never reaches onsuccess: the summary is printed after Snakemake says so.
summary_when_nothing_to_do(TARGETS)
