"""What a user of the command line sees when something goes wrong: one line, never a traceback.

:func:`run` runs one command and answers every way it can end:

- it returns: its status (0, or 1 when a sweep row failed);
- blendlab's errors (the :mod:`blendlab.errors` family), ``ValueError``, ``FileNotFoundError`` and
  other ``OSError`` (a full disk, a folder without permission): ``blendlab <command>: error: <what
  was wrong and the fix>`` on stderr, **status 1**; the message is blendlab's own, spec parse
  errors included (file, line and column);
- a usage mistake argparse finds (an unknown flag, a missing ``-p``): argparse's usage and
  ``blendlab <command>: error: ...``, **status 2**;
- Ctrl-C: ``blendlab <command>: interrupted: <what was kept and how to resume>``, **status 130**
  (128 + SIGINT, as shells report it); ``interrupted()`` of the command says what was kept;
- warnings: ``blendlab <command>: warning: <message>``, one line each (not Python's two-line
  ``file:line: Category: message`` + source line).

Anything else (a bug) keeps its traceback: that is what a bug report needs.

May import: errors.
"""

from __future__ import annotations

import signal
import sys
import warnings
from contextlib import contextmanager
from typing import Callable

__all__ = ["run", "one_line_warnings", "ERROR", "INTERRUPTED", "USAGE"]

ERROR, USAGE, INTERRUPTED = 1, 2, 130


def _say(command: str, kind: str, message: str) -> None:
    print(f"blendlab {command}: {kind}: {message}", file=sys.stderr, flush=True)


@contextmanager
def one_line_warnings(command: str):
    """Inside the block, every warning prints as ``blendlab <command>: warning: <message>``."""
    def show(message, category, filename, lineno, file=None, line=None):
        _say(command, "warning", " ".join(str(message).split()))

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def run(command: str, fn: Callable[[], int | None], interrupted: Callable[[], str] | None = None) -> int:
    """``fn()``'s status (None -> 0), or the one line and status described in the module docs."""
    from ..errors import BlendlabError

    try:
        with one_line_warnings(command):
            return fn() or 0
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C cannot cut the line short
        try:
            kept = interrupted() if interrupted else "nothing was kept; run the same command again"
        except Exception as exc:  # noqa: BLE001 - the summary of what was kept must not become a traceback
            kept = f"what was kept could not be listed ({exc})"
        _say(command, "interrupted", kept)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        return INTERRUPTED
    except (BlendlabError, ValueError, OSError) as exc:
        _say(command, "error", str(exc) or type(exc).__name__)
        return ERROR
