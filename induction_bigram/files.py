"""Atomic file writes: write a temporary file beside the target, fsync, then rename.

A reader therefore sees either the old file or the complete new one, never a prefix, and an
interrupted write leaves nothing behind but (at worst) nothing at all.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO]:
    """Open a temporary file for writing that replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file normal permissions
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_open(path, "w") as handle:
        handle.write(text)


def atomic_write_with(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> None:
    """Atomically write a binary file with ``write(handle)`` (e.g. ``torch.save``, ``savefig``)."""
    with atomic_open(path, "wb") as handle:
        write(handle)


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by ``None``, so that it is strict JSON."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps_json(value: Any) -> str:
    """Indented strict JSON (non-finite floats become null)."""
    return json.dumps(json_safe(value), indent=2, allow_nan=False)
