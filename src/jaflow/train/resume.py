"""Find the last complete checkpoint to resume from.

The Trainer writes `trainer_state.json` last (after weights, optimizer, scheduler and RNG
state), so a checkpoint directory counts as complete only when it has that file and its
weights. A job killed mid-save leaves an incomplete directory, which is ignored and removed.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

WEIGHT_FILES = (
    "adapter_model.safetensors",
    "adapter_model.bin",
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
_CKPT = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_step(path: str | Path) -> int | None:
    m = _CKPT.match(Path(path).name)
    return int(m.group(1)) if m else None


def has_weights(ckpt: Path) -> bool:
    for name in WEIGHT_FILES:
        f = ckpt / name
        if f.is_file() and f.stat().st_size > 0:
            if name.endswith(".index.json"):
                import json

                shards = set(json.loads(f.read_text())["weight_map"].values())
                return all((ckpt / s).is_file() for s in shards)
            return True
    return False


def is_complete(ckpt: str | Path) -> bool:
    ckpt = Path(ckpt)
    state = ckpt / "trainer_state.json"
    return ckpt.is_dir() and state.is_file() and state.stat().st_size > 0 and has_weights(ckpt)


def checkpoints(root: str | Path) -> list[Path]:
    """Checkpoint directories under `root`, by step."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and checkpoint_step(p) is not None]
    return sorted(found, key=checkpoint_step)


def complete_checkpoints(root: str | Path) -> list[Path]:
    return [p for p in checkpoints(root) if is_complete(p)]


def last_complete_checkpoint(root: str | Path) -> Path | None:
    done = complete_checkpoints(root)
    return done[-1] if done else None


def remove_incomplete(root: str | Path) -> list[Path]:
    """Delete half-written checkpoint directories (the Trainer would otherwise write into them)."""
    removed = [p for p in checkpoints(root) if not is_complete(p)]
    for p in removed:
        log.warning("removing incomplete checkpoint %s", p)
        shutil.rmtree(p)
    return removed


FINGERPRINT = "job.sha256"


def stale_dir(root: str | Path, fingerprint: str | None) -> Path:
    """Where the checkpoints of a superseded job go: `<root>.stale-<first 12 hex of its fingerprint>`."""
    root = Path(root)
    return root.with_name(f"{root.name}.stale-{(fingerprint or 'unknown')[:12]}")


def claim(root: str | Path, fingerprint: str) -> bool:
    """Make `root` hold checkpoints of the job with `fingerprint`.

    Checkpoints left by a job with another fingerprint (another parent model by content, other
    data, other settings) are never resumed: they are moved aside to `stale_dir` (replacing an
    older copy there) and the run starts from step 0. Returns True when existing checkpoints
    were kept for resuming.
    """
    root = Path(root)
    marker = root / FINGERPRINT
    kept = True
    if root.is_dir() and any(root.iterdir()):
        old = marker.read_text().strip() if marker.is_file() else None
        if old != fingerprint:
            aside = stale_dir(root, old)
            log.warning(
                "checkpoints in %s come from another job (fingerprint %s, now %s): moved to %s; "
                "starting from step 0",
                root,
                (old or "none")[:12],
                fingerprint[:12],
                aside,
            )
            if aside.exists():
                shutil.rmtree(aside)
            root.rename(aside)
            kept = False
    root.mkdir(parents=True, exist_ok=True)
    marker.write_text(fingerprint + "\n")
    return kept
