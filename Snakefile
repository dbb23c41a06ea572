# jaflow: train-then-evaluate experiments on Japanese LLMs.
# Wiring only: every rule's logic lives in the jaflow package (src/jaflow).
from snakemake.utils import min_version

min_version("9.0")


# The tiny demo is the default; a config given with --configfile (an experiment) stands alone
# instead of being merged into the demo's models.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"



report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/tiny.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/merge.smk"
include: "workflow/rules/jglue.smk"
include: "workflow/rules/mtbench.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets(),
