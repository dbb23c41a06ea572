"""One readable recipe per method, then the shared loop: evaluate and save every N steps,
resume from the last complete checkpoint, write the tidy log.

    qlora  4-bit nf4 base + prepare_model_for_kbit_training + LoRA
    lora   LoRA on the base in its compute dtype
    full   every weight trained (fp32 masters)
    lisa   full, with LisaCallback switching the trained decoder layers every K steps
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jaflow.config.schema import filled
from jaflow.errors import ConfigError
from jaflow.io import atomic_path, sha256_file, write_json
from jaflow.provenance import digest, model_identity
from jaflow.train import builders, data, distributed, resume, settings

if TYPE_CHECKING:  # transformers is imported where the Trainer is built
    from transformers import Trainer, TrainerCallback

log = logging.getLogger(__name__)


@dataclass
class TrainJob:
    """Everything one training run needs; JSON-serialisable so a launcher can re-run it."""

    name: str
    method: str
    model: dict[str, Any]  # graph.hf_args(parent)
    train_file: str
    validation_file: str
    out_dir: str  # results/train/<name>: log_history.csv, trainer_state.json (, lisa_layers.csv)
    checkpoints: str  # results/train/<name>/checkpoints
    train: dict[str, Any] = field(default_factory=dict)
    select: dict[str, Any] = field(default_factory=dict)
    seed: int = 1234

    def __post_init__(self) -> None:
        # the workflow passes filled blocks; a job made by hand gets the same schema defaults
        self.train = filled("train", self.train, f"models.{self.name}.train")
        self.select = filled("select", self.select, f"models.{self.name}.select")

    @property
    def run_seed(self) -> int:
        s = self.train["seed"]
        return self.seed if s is None else s

    def fingerprint_parts(self) -> dict[str, Any]:
        """What decides the weights a run ends with, by content: the parent model's identity
        (its checksums, not its path), the sha256 of both data files, every setting but the
        logging-only ones, the seed, and the selection metric (it decides which checkpoints
        are kept)."""
        loading = {
            k: v for k, v in self.model.items() if k not in ("pretrained", "peft", "tokenizer")
        }
        return {
            "method": self.method,
            "parent": model_identity(self.model)["sha256"],
            "loading": loading,
            "train": {k: v for k, v in self.train.items() if k not in settings.LOGGING_ONLY},
            "seed": self.run_seed,
            "data": {
                "train": sha256_file(self.train_file),
                "validation": sha256_file(self.validation_file),
            },
            "select_metric": self.select["metric"],
        }

    def fingerprint(self) -> str:
        """Checkpoints of a job with another fingerprint are never resumed."""
        return digest(self.fingerprint_parts())

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2)

    @classmethod
    def from_json(cls, text: str) -> TrainJob:
        return cls(**json.loads(text))


# -- recipes: (job) -> (model, extra callbacks) ----------------------------------------

Recipe = Callable[[TrainJob], tuple[Any, list["TrainerCallback"]]]


def qlora(job: TrainJob):
    model = builders.load_model(job.model, "qlora", job.train)
    return builders.apply_lora(model, "qlora", job.train), []


def lora(job: TrainJob):
    model = builders.load_model(job.model, "lora", job.train)
    return builders.apply_lora(model, "lora", job.train), []


def full(job: TrainJob):
    return builders.load_model(job.model, "full", job.train), []


def lisa_recipe(job: TrainJob):
    from jaflow.train import lisa

    # Every parameter stays trainable here: the optimizer must register all layers (LMFlow#726).
    model = builders.load_model(job.model, "lisa", job.train)
    cb = lisa.callback(model, job.train, job.run_seed)
    return model, [cb]


RECIPES: dict[str, Recipe] = {"qlora": qlora, "lora": lora, "full": full, "lisa": lisa_recipe}


# -- shared loop ------------------------------------------------------------------------


def build_datasets(job: TrainJob, tokenizer) -> tuple[list[data.Example], list[data.Example]]:
    max_length, on_prompt = job.train["max_length"], job.train["train_on_prompt"]
    train_rows = data.tokenize_dataset(
        tokenizer, data.read_pairs(job.train_file), max_length, on_prompt
    )
    eval_rows = data.tokenize_dataset(
        tokenizer, data.read_pairs(job.validation_file), max_length, on_prompt
    )
    return train_rows, eval_rows


def build_trainer(job: TrainJob, callbacks: list[TrainerCallback] | None = None) -> Trainer:
    """The Trainer for `job`, before any training (tests poke at it)."""
    from transformers import Trainer, set_seed

    from jaflow.train import history

    if job.method not in RECIPES:
        raise ConfigError(
            f"models.{job.name}.method: '{job.method}' is not one of {sorted(RECIPES)}"
        )
    seed = job.run_seed
    set_seed(seed)  # LoRA init and anything else random at build time
    tokenizer = builders.load_tokenizer(job.model)
    train_rows, eval_rows = build_datasets(job, tokenizer)
    model, extra = RECIPES[job.method](job)
    args = builders.training_arguments(
        job.train,
        job.method,
        job.checkpoints,
        seed,
        job.select["metric"],
        **distributed.training_kwargs(job.train, job.method, model),
    )
    return Trainer(
        model=model,
        args=args,
        train_dataset=train_rows,
        eval_dataset=eval_rows,
        data_collator=data.collator(tokenizer, job.train["packing"]),
        processing_class=tokenizer,
        callbacks=[
            history.ThroughputCallback(),
            history.EvaluateAtEndCallback(),
            *extra,
            *distributed.callbacks(job.train, args),
            *(callbacks or []),
        ],
    )


def train(job: TrainJob, callbacks: list[TrainerCallback] | None = None) -> Trainer:
    """Train (or resume) `job`; the main process writes the tidy outputs atomically."""
    from transformers import TrainerState

    trainer = build_trainer(job, callbacks)
    rank, world = trainer.args.process_index, trainer.args.world_size
    log.info(
        "rank %d/%d: %s (%s), %d train / %d eval examples",
        rank,
        world,
        job.name,
        job.method,
        len(trainer.train_dataset),
        len(trainer.eval_dataset),
    )
    if trainer.is_world_process_zero():
        resume.claim(job.checkpoints, job.fingerprint())
        resume.remove_incomplete(job.checkpoints)
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
    last = resume.last_complete_checkpoint(job.checkpoints)
    if last is not None:
        log.info("resuming from %s", last)
        state = TrainerState.load_from_json(str(last / "trainer_state.json"))
        if state.max_steps > 0 and state.global_step >= state.max_steps:
            # Killed after the last save: training is done. (The Trainer would run one more step.)
            log.info("%s is the final checkpoint; writing outputs only", last.name)
            trainer.state = state
            last = None
    if trainer.state.global_step == 0:
        trainer.train(resume_from_checkpoint=str(last) if last else None)
    if trainer.is_world_process_zero():
        write_outputs(job, trainer)
    return trainer


def write_outputs(job: TrainJob, trainer: Trainer) -> None:
    from jaflow.train import history, lisa

    out = Path(job.out_dir)
    state, timings = history.split_timings(asdict(trainer.state))
    history.write_log_history(out / "log_history.csv", state["log_history"])
    with atomic_path(out / "trainer_state.json") as tmp:
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    write_json(out / "timings.json", {"log_history": timings})
    log.info("rank %d wrote %s", trainer.args.process_index, out)
    if job.method == "lisa":
        cb = next(c for c in trainer.callback_handler.callbacks if isinstance(c, lisa.LisaCallback))
        rows = cb.rows(trainer.state.global_step)
        write_lisa_layers(out / "lisa_layers.csv", rows)


def write_lisa_layers(path: Path, rows: list[tuple[int, list[int]]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["step", "active_layers"])
    for step, layers in rows:
        w.writerow([step, " ".join(map(str, layers))])
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    """`python -m jaflow.train.recipes job.json`: what each launched process runs."""
    import sys

    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(
        level=logging.INFO,
        format=f"[rank {os.environ.get('RANK', '0')}] %(levelname)s %(name)s: %(message)s",
    )
    train(TrainJob.from_json(Path(argv[0]).read_text(encoding="utf-8")))
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        # every rank leaves together: a process group torn down by interpreter exit while
        # another rank still talks to it aborts that rank ("terminate called ...")
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
