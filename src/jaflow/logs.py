"""Logging for workflow scripts: everything a job prints goes to its log file.

jaflow's own log lines (logger `jaflow.*`, INFO and up) also reach the console as one concise
progress line each, prefixed with the job (`[train/tiny_qlora] ...`), at most one INFO line
every CONSOLE_INTERVAL seconds per job; warnings and errors always.

An error the user can fix (`jaflow.errors.JaflowError`: a key path, or a file:line) ends the job
with that one line on the console, and the traceback in the log; other errors keep theirs.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from jaflow.errors import JaflowError

CONSOLE_INTERVAL = 5.0


def user_error_line(error: JaflowError, log: str | None) -> str:
    where = f" (details: {log})" if log else ""
    return f"jaflow: {error}{where}"


class _Console(logging.Handler):
    """Progress lines of one job on the console Snakemake shows (the job's original stderr)."""

    def __init__(self, stream, job: str):
        super().__init__(logging.INFO)
        self.stream, self.job, self.last = stream, job, 0.0
        self.addFilter(lambda r: r.name == "jaflow" or r.name.startswith("jaflow."))

    def emit(self, record: logging.LogRecord) -> None:
        now = time.monotonic()
        if record.levelno < logging.WARNING and now - self.last < CONSOLE_INTERVAL:
            return
        self.last = now
        msg = record.getMessage()
        msg = msg if len(msg) <= 160 else msg[:157] + "..."
        try:
            self.stream.write(f"[{self.job}] {msg}\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed console never fails the job
            pass


@contextlib.contextmanager
def log_to(path: str | None) -> Iterator[logging.Logger]:
    """Send logging, stdout and stderr of the block to `path` (and keep stderr for errors)."""
    logger = logging.getLogger("jaflow")
    if not path:
        logging.basicConfig(level=logging.INFO)
        yield logger
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8", buffering=1) as f:
        handler = logging.StreamHandler(f)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        old_out, old_err = sys.stdout, sys.stderr
        parts = Path(path).with_suffix("").parts  # logs/train/m.log -> train/m
        job = "/".join(
            parts[len(parts) - parts[::-1].index("logs") :] if "logs" in parts[:-1] else parts[-1:]
        )
        console = _Console(old_err, job)
        root.addHandler(console)
        sys.stdout = sys.stderr = f
        try:
            yield logger
        except JaflowError as e:
            root.removeHandler(console)  # the console gets the one line below, not a traceback
            logger.exception("job failed")
            sys.stdout, sys.stderr = old_out, old_err
            print(user_error_line(e, path), file=sys.stderr)
            raise SystemExit(1) from None
        except Exception:
            logger.exception("job failed")
            raise
        finally:
            sys.stdout, sys.stderr = old_out, old_err
            root.removeHandler(handler)
            root.removeHandler(console)
