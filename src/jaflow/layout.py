"""Where every output lives: the one place paths are spelled.

Each experiment (the config's `name`) writes under `results/<experiment>/` and logs under
`logs/<experiment>/`, so two experiments never overwrite each other. Content-keyed caches, which
experiments may share, live under `results/cache/`. Rules, input functions, scripts and the
report all ask a `Layout`; nothing parses a path back into a name.

```
results/<experiment>/
  tiny/                      the tiny offline world (only when the config names `tiny:` things)
  datasets/<dataset>/        train.jsonl, validation.jsonl, manifest.json
  train/<model>/             log_history.csv, trainer_state.json, checkpoints/ (not an output)
  models/<model>/            selected or merged weights, checksums.sha256
  jglue/data/                the JGLUE files lm-eval reads (jglue/marc_ja-v1.1/: MARC-ja rebuilt)
  jglue/<suite>/<model>/     scores.csv, results.json, samples_<task>.jsonl
  mtbench/<bench>/           model_answer/, model_judgment/<judge>/, scores/<judge>/, pairwise/
  reports/<report>/          index.md, tables/, plots/, cards/
results/cache/               content-keyed caches shared by experiments (judge calls, JGLUE)
logs/<experiment>/<stage>/   one log per job
```
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from jaflow.errors import ConfigError

NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
TINY_PREFIX = "tiny:"
# What a config may name in the tiny world, e.g. `pretrained: tiny:llama`, `path: tiny:instructions`.
TINY_FILES = {
    "instructions": "data/instructions.jsonl",
    "marc_train": "data/marc_train.jsonl",
    "judge_train": "data/judge_train.jsonl",
    "mtbench_questions": "mtbench/question.jsonl",
    "jglue": "jglue",
    "tokenizer": "tokenizer",
}
TINY_ARCHS = ("llama", "gpt_neox", "mistral")
DATASET_FILES = ("train.jsonl", "validation.jsonl", "manifest.json")


@dataclass(frozen=True)
class Layout:
    experiment: str
    results: str = "results"
    logs: str = "logs"

    def __post_init__(self) -> None:
        if not NAME.match(self.experiment) or self.experiment == "cache":
            raise ConfigError(
                f"name: '{self.experiment}' is not a usable experiment name "
                "(letters, digits, '_', '.', '-'; not 'cache')"
            )

    @property
    def root(self) -> str:
        return f"{self.results}/{self.experiment}"

    def log(self, stage: str, name: str) -> str:
        return f"{self.logs}/{self.experiment}/{stage}/{name}.log"

    def cache(self, kind: str) -> str:
        """A content-keyed cache shared by every experiment of this checkout."""
        return f"{self.results}/cache/{kind}"

    # -- the tiny world ------------------------------------------------------------------

    def tiny(self, what: str) -> str:
        return f"{self.root}/tiny/{TINY_FILES[what]}"

    def tiny_model(self, arch: str) -> str:
        return f"{self.root}/tiny/models/{arch}"

    def resolve_tiny(self, ref: str, key: str) -> str:
        """`tiny:<thing>` -> its path in this experiment's tiny world; `key` names the setting."""
        what = ref[len(TINY_PREFIX) :]
        if what in TINY_ARCHS:
            return self.tiny_model(what)
        if what in TINY_FILES:
            return self.tiny(what)
        known = ", ".join(sorted([*TINY_FILES, *TINY_ARCHS]))
        raise ConfigError(f"{key}: unknown tiny-world name '{ref}' (known: tiny:<{known}>)")

    # -- stages --------------------------------------------------------------------------

    def dataset(self, name: str, file: str) -> str:
        return f"{self.root}/datasets/{name}/{file}"

    def dataset_files(self, name: str) -> dict[str, str]:
        return {f.split(".")[0]: self.dataset(name, f) for f in DATASET_FILES}

    def train(self, model: str, file: str) -> str:
        """log_history.csv, trainer_state.json or checkpoints of a training run."""
        return f"{self.root}/train/{model}/{file}"

    def model(self, name: str) -> str:
        return f"{self.root}/models/{name}"

    def weights_check(self, model: str) -> str:
        """The digests of a base model's files, checked against the config's md5/sha256."""
        return f"{self.root}/weights/{model}.json"

    def jglue_data(self) -> str:
        return f"{self.root}/jglue/data"

    def marc_ja(self) -> str:
        """MARC-ja rebuilt from the user's Amazon reviews file (upstream file names)."""
        return f"{self.root}/jglue/marc_ja-v1.1"

    def jglue(self, suite: str, model: str, file: str) -> str:
        return f"{self.root}/jglue/{suite}/{model}/{file}"

    def mtbench(self, bench: str, *parts: str) -> str:
        return "/".join([f"{self.root}/mtbench/{bench}", *parts])

    def mtbench_answers(self, bench: str, model: str) -> str:
        return self.mtbench(bench, "model_answer", f"{model}.jsonl")

    def mtbench_judgments(self, bench: str, judge: str, model: str) -> str:
        return self.mtbench(bench, "model_judgment", judge, f"{model}.jsonl")

    def mtbench_scores(self, bench: str, judge: str, model: str) -> str:
        return self.mtbench(bench, "scores", judge, f"{model}.csv")

    def mtbench_pairwise(self, bench: str, judge: str, model: str, ext: str) -> str:
        return self.mtbench(bench, "pairwise", judge, f"{model}.{ext}")

    def judge_cache(self, judge: str) -> str:
        return f"{self.cache('mtbench_judge')}/{judge}.jsonl"

    def report(self, name: str, part: str) -> str:
        return f"{self.root}/reports/{name}/{part}"
