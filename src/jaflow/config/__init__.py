"""One experiment's config: load -> validate (filling the schema's defaults) -> expand sweeps ->
resolve names -> check everything a job would trip on -> a frozen `Experiment`.

`config/schema.yaml` is the only home of defaults: code reads the filled config, never
`.get(key, literal)`. Everything a rule or report will need is checked here, when the DAG is
built, with errors naming the key (`models.x.pretrained: ...`), so a typo costs seconds, not
the training and evaluation that come before the job that would have read it.
"""

from __future__ import annotations

from jaflow.config.schema import SCHEMA_PATH, format_error, load_yaml, validate_config
from jaflow.config.specs import Experiment, canonical, experiment_name, load_experiment
from jaflow.config.sweeps import expand_sweeps


def prepare_config(config: dict, schema_path=SCHEMA_PATH) -> dict:
    """Validate `config` in place (filling defaults) and expand its sweeps into models."""
    validate_config(config, schema_path)
    expand_sweeps(config)
    return config


__all__ = [
    "SCHEMA_PATH",
    "Experiment",
    "canonical",
    "experiment_name",
    "expand_sweeps",
    "format_error",
    "load_experiment",
    "load_yaml",
    "prepare_config",
    "validate_config",
]
