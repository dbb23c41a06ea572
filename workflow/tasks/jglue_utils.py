"""Hooks the generated jp-stable task YAMLs name (`!function jglue_utils.<task>__<hook>`).

The logic lives in `jaflow.evaluate.jglue.task`; this file only exports it next to the YAMLs,
where lm-eval looks for `!function` modules.
"""

from jaflow.evaluate.jglue.task import exported_hooks

globals().update(exported_hooks())
