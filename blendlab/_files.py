"""A fresh file to write into before it is moved into place, with the mode the user's umask asks for.

``tempfile.mkstemp`` creates its files ``0600`` whatever the umask, and ``os.replace`` keeps that
mode, so outputs written "atomically" through it were private to their owner. :func:`new_file`
creates the file as ``open(path, "w")`` would, ``0o666 & ~umask``, without reading or changing the
process's umask (which is not thread-safe). ``blendlab.images.atomic_write`` and the downloads use it.

May import: nothing.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["new_file"]


def new_file(folder: str | os.PathLike, prefix: str = "", suffix: str = "") -> Path:
    """Create an empty file ``folder/<prefix><random><suffix>`` that did not exist (``O_EXCL``), of
    mode ``0o666 & ~umask``; returns its path. The caller writes it, moves it into place or deletes it."""
    for _ in range(100):
        path = Path(folder) / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return path
    raise FileExistsError(f"could not create a new temporary file in {folder}")
