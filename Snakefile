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
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/merge.smk"
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
        all_targets(),


onsuccess:
    print(TARGETS.summary())


# A run with nothing to do never reaches onsuccess: print the summary after Snakemake says so.
import logging as _logging
from snakemake.common import NOTHING_TO_BE_DONE_MSG as _NOTHING


class _SummaryWhenNothingToDo(_logging.Handler):
    jaflow_summary = True

    def emit(self, record):
        if record.getMessage() == _NOTHING:
            print(TARGETS.summary())


_snakemake_logger = _logging.getLogger("snakemake.logging")
for _h in [
    h for h in _snakemake_logger.handlers if getattr(h, "jaflow_summary", False)
]:
    _snakemake_logger.removeHandler(_h)  # a Snakefile parsed again replaces its handler
_snakemake_logger.addHandler(_SummaryWhenNothingToDo())
