"""JGLUE through lm-eval with jaflow's jp-stable task family (see docs/jglue.md).

- `templates`: the one table of jp-stable prompt templates (task YAMLs are generated from it)
- `yamls`: the generator of workflow/tasks/*.yaml
- `task`: lm-eval hooks and `JpStableTask` (jp-stable's order, few-shot draws, generation caps)
- `metrics`: JSQuAD EM/F1 (neologdn, emoji, MeCab), ROUGE-2 (MeCab), balanced metrics, MGSM
- `data`: upstream files -> local JSON lines (`materialize`)
- `run`: one suite on one model through `lm_eval.simple_evaluate` -> results.json, samples, scores.csv
"""

from jaflow.evaluate.jglue.templates import TEMPLATES, get_template, task_name

__all__ = ["TEMPLATES", "get_template", "task_name"]
