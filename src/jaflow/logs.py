"""Logging for workflow scripts: everything a job prints goes to its log file.

An error the user can fix (`jaflow.errors.JaflowError`: a key path, or a file:line) ends the job
with that one line on the console, and the traceback in the log; other errors keep theirs.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from jaflow.errors import JaflowError


def user_error_line(error: JaflowError, log: str | None) -> str:
    where = f" (details: {log})" if log else ""
    return f"jaflow: {error}{where}"


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
        sys.stdout = sys.stderr = f
        try:
            yield logger
        except JaflowError as e:
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
