"""Atomic file writes, strict JSON, and the folders the package writes runs and studies into.

Atomic writes: a temporary file beside the target, fsync, rename: a reader sees the old file or the
new one, never a prefix; a killed writer's ``.NAME.*.tmp`` is removed by the next :func:`claim_folder`.

Folders: :func:`claim_folder` is how every writer of a run or study folder starts. It holds an
exclusive ``fcntl.flock`` on ``FOLDER/.induction-bigram.lock`` while it writes (released when
the writer exits or is killed, so a dead writer never leaves a stale lock), marks the folder
with its kind in ``FOLDER/.induction-bigram``, and refuses a folder that is not empty and not
ours, a folder of another kind (a study folder is never a training run), and a folder that already
holds its kind unless the caller resumes or overwrites it (deleting only the files the package wrote).

Figure folders (``figures/`` of a run or study, ``--out`` of ``memories`` / ``incontext``) too: their
marker lists the names written (:func:`claim_names`); a user's file of such a name is refused.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Literal, TypeVar

from induction_bigram.errors import RunFolderError
from induction_bigram.serialise import json_safe

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO]:
    """Open a temporary file for writing that replaces ``path`` only if the block succeeds."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:  # name the file the caller asked for, not the temporary one
        raise RunFolderError(f"cannot write {path}: {err.strerror or err}") from None
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file normal permissions
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        full = _disk_full(err, path)
        Path(tmp).unlink(missing_ok=True)
        if full:
            raise RunFolderError(f"no space left on the device: cannot write {path}") from None
        raise


def _disk_full(err: BaseException, path: Path) -> bool:
    """Whether a write failed for want of space (ENOSPC, or torch's "inline_container.cc" on a full device)."""
    if isinstance(err, OSError):
        return err.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(err, RuntimeError) and ("inline_container" in str(err) or "PytorchStreamWriter" in str(err)):
        return shutil.disk_usage(path.parent).free < 2**20
    return False


def append_text(path: str | os.PathLike[str], text: str) -> None:
    """Append ``text`` (a line of ``metrics.jsonl``); a full disk is an error naming the file."""
    try:
        with open(path, "a") as handle:
            handle.write(text)
    except OSError as err:
        if _disk_full(err, Path(path)):
            raise RunFolderError(f"no space left on the device: cannot write {path}") from None
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_open(path, "w") as handle:
        handle.write(text)


def atomic_write_with(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> None:
    """Atomically write a binary file with ``write(handle)`` (e.g. ``torch.save``, ``savefig``)."""
    with atomic_open(path, "wb") as handle:
        write(handle)


def dumps_json(value: Any, indent: int | None = 2, **kwargs: Any) -> str:
    """Strict JSON (non-finite floats become null), indented unless ``indent=None``."""
    return json.dumps(json_safe(value), indent=indent, allow_nan=False, **kwargs)


# -- run and study folders ------------------------------------------------------------------

MARKER = ".induction-bigram"
LOCK = ".induction-bigram.lock"
FolderKind = str  # "run", "reproduce", "sweep", "figures", or a study's name (its folder)
Existing = Literal["refuse", "resume", "overwrite"]
R = TypeVar("R")

#: what each kind of folder holds that the package wrote (``--overwrite`` deletes only these);
#: a study's folder, STUDY_FILES
STUDY_FILES = frozenset({"result.json"})
OWN_FILES: dict[str, frozenset[str]] = {
    "run": frozenset({"config.json", "metrics.jsonl", "checkpoint.pt"}),
    "lengths": STUDY_FILES | {"lengths.json", "lengths_attention.html"},
    "reproduce": frozenset({"REPORT.md", "numbers.json"}),
    "sweep": frozenset({"sweep.json", "runs.jsonl", "runs.csv", "aggregate.json", "aggregate.csv"})
    | {"capacity_law.png", "capacity_law.json"},
    "figures": frozenset(),  # the names written are listed in the folder's marker (claim_names)
}
_DESCRIBE = {"run": "training run", "reproduce": "reproduce report", "sweep": "sweep", "figures": "figure"}
# folders a legacy (unmarked) folder of each kind may hold besides its files
_LEGACY_DIRS = {"run": frozenset({"figures"}), "lengths": frozenset({"figures"})}
_LEGACY_DIRS["reproduce"] = frozenset({"training", "memories", "hijack", "lengths"})
_FIGURE_SUFFIXES = (".png", ".html")
_TEMP = re.compile(r"^\.(?P<name>.+)\.[A-Za-z0-9_]+\.tmp$")
_OWN_NAMES = frozenset().union(*OWN_FILES.values(), STUDY_FILES, {MARKER})


def _describe(kind: str) -> str:
    return _DESCRIBE.get(kind, f"{kind} study")


def folder_kind(path: str | os.PathLike[str]) -> str | None:
    """The kind written in ``path``'s marker (``"run"``, ``"lengths"``, ``"reproduce"``), or None."""
    kind = (marker := _marker(Path(path))).get("kind")
    return kind if marker.get("format") == "induction-bigram-folder" and isinstance(kind, str) and kind else None


def _marker(path: Path) -> dict[str, Any]:
    try:
        data = json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_marker(path: Path, kind: str, files: set[str] | frozenset[str] = frozenset()) -> None:
    data = {"format": "induction-bigram-folder", "kind": kind} | ({"files": sorted(files)} if files else {})
    atomic_write_text(path / MARKER, dumps_json(data, indent=None) + "\n")


def own_files(path: str | os.PathLike[str], kind: str) -> frozenset[str]:
    """The names of the files the package wrote in the ``kind`` folder ``path``: its kind's
    fixed names and those its marker lists (:func:`claim_names`)."""
    path = Path(path)
    recorded = _marker(path).get("files", [])
    names = OWN_FILES.get(kind, STUDY_FILES) | {name for name in recorded if isinstance(name, str)}
    if kind == "figures" and folder_kind(path) is None and path.is_dir():  # written before folders were marked
        names |= {entry for entry in os.listdir(path) if entry.endswith(_FIGURE_SUFFIXES)}
    return frozenset(names)


def claim_names(folder: str | os.PathLike[str], kind: FolderKind, names: list[str]) -> None:
    """Before the package writes ``names`` into ``folder`` (held by :func:`claim_folder`): a
    :class:`RunFolderError` naming one that exists there but is not ours, else list them as ours."""
    folder = Path(folder)
    own = own_files(folder, kind)
    for name in names:
        if (folder / name).exists() and name not in own:
            raise RunFolderError(
                f"{folder / name} exists and was not written by induction-bigram; it is not replaced: "
                "move it away or choose another folder"
            )
    _write_marker(folder, kind, (own - OWN_FILES.get(kind, STUDY_FILES)) | set(names))


@contextmanager
def claim_folder(
    path: str | os.PathLike[str], kind: FolderKind, *, existing: Existing = "refuse", label: str = ""
) -> Iterator[Path]:
    """Hold ``path`` as the one writer of a ``kind`` folder for the duration of the block.

    Args:
        path / kind: the folder (created if missing) and what it holds.
        existing: what to do when it already holds a ``kind``: ``"refuse"`` (an error),
            ``"resume"`` (go on writing into it) or ``"overwrite"`` (first delete the files the
            package wrote there, in it and in the run and study folders inside it).
        label: how messages name the folder (e.g. ``"--out"``); default the path alone.

    Raises:
        RunFolderError: ``path`` is a file, unwritable, locked by another process (named by its
            PID), not empty and not ours, of another kind, or holds a ``kind`` and may not.
    """
    path = Path(path)
    name = f"{label} {path}" if label else str(path)
    held = _HELD.get(path.resolve())
    if held is not None:  # this process already holds it (a command around an API call)
        if held != kind:
            raise RunFolderError(f"{name} is a {_describe(held)} folder, not a {_describe(kind)} folder")
        yield path
        return
    check_folder(path, kind, existing=existing, label=label)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o666 & ~_UMASK)
    except OSError as err:
        raise RunFolderError(f"cannot write into {name}: {err.strerror or err}") from None
    try:
        if not _try_lock(fd):
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise _busy(name, holder, path) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _check_contents(path, kind, existing, name, label)  # again, now that we hold the lock
        _remove_stale_temporaries(path)
        if existing == "overwrite":
            _remove_own_files(path, kind)
        if folder_kind(path) is None:
            _write_marker(path, kind, own_files(path, kind) - OWN_FILES.get(kind, STUDY_FILES))
        _HELD[path.resolve()] = kind
        try:
            yield path
        finally:
            del _HELD[path.resolve()]
    finally:
        os.close(fd)  # releases the lock


_HELD: dict[Path, str] = {}  # folders this process holds, by resolved path


def run_in_study_folder(
    out_dir: str | os.PathLike[str] | None, kind: FolderKind, existing: Existing, compute: Callable[[Path | None], R]
) -> R:
    """A study's ``run``: ``compute(folder)`` inside ``out_dir`` held as a ``kind`` folder, then
    its result written to ``folder/result.json`` (``compute(None)`` and nothing on disk without
    ``out_dir``); the result must have ``to_dict``."""
    if out_dir is None:
        return compute(None)
    with claim_folder(out_dir, kind, existing=existing) as folder:
        result = compute(folder)
        atomic_write_text(folder / "result.json", dumps_json(result.to_dict()) + "\n")
    return result


def check_folder(
    path: str | os.PathLike[str], kind: FolderKind, *, existing: Existing = "refuse", label: str = ""
) -> None:
    """Raise :class:`RunFolderError` unless :func:`claim_folder` may use ``path`` (no lock taken,
    nothing written): for commands that check ``--out`` before they start."""
    path = Path(path)
    name = f"{label} {path}" if label else str(path)
    if path.exists() and not path.is_dir():
        raise RunFolderError(f"{name} is a file, not a folder")
    if not path.exists():
        parent = next((p for p in path.parents if p.exists()), Path("."))
        if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            raise RunFolderError(f"cannot create {name}: {parent} is not a writable folder")
        return
    if not os.access(path, os.W_OK | os.X_OK):
        raise RunFolderError(f"cannot write into {name}: permission denied")
    if path.resolve() not in _HELD:
        holder = _lock_holder(path)
        if holder is not None:
            raise _busy(name, holder, path)
    _check_contents(path, kind, existing, name, label)


def _busy(name: str, holder: str, path: Path) -> RunFolderError:
    return RunFolderError(
        f"{name} is being written by another process (PID {holder}, lock {path / LOCK}); "
        "wait for it to finish or choose another folder"
    )


def _try_lock(fd: int, tries: int = 10) -> bool:
    """Take the exclusive lock, retrying briefly (another process may be probing it)."""
    for attempt in range(tries):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if attempt + 1 < tries:
                time.sleep(0.02)
    return False


def _lock_holder(path: Path) -> str | None:
    """The PID written in ``path``'s lock file if another open file holds its lock, else None."""
    try:
        fd = os.open(path / LOCK, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _check_contents(path: Path, kind: str, existing: str, name: str, label: str) -> None:
    entries = sorted(e for e in os.listdir(path) if e not in (MARKER, LOCK) and not _is_own_temporary(e))
    found = folder_kind(path)
    if found is None:
        if not entries:
            return
        if not _looks_like(kind, path, entries):
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            raise RunFolderError(
                f"{name} is not empty ({shown}) and was not written by induction-bigram; "
                "nothing there is touched: choose a new or empty folder"
            )
        found = kind
    if found != kind:
        raise RunFolderError(
            f"{name} is a {_describe(found)} folder, not a {_describe(kind)} folder; choose another folder"
        )
    if entries and existing == "refuse":
        flags = "--resume to continue it or --overwrite to replace it" if label else "resume or overwrite"
        held = "run" if kind == "run" else _describe(kind)
        raise RunFolderError(f"{name} already holds a {held}; pass {flags}, or choose another folder")


def _looks_like(kind: str, path: Path, entries: list[str]) -> bool:
    """Whether an unmarked folder is one the package wrote before folders were marked."""
    own = OWN_FILES.get(kind, STUDY_FILES)
    if kind == "figures":  # figures only, inside a run or study folder of ours
        inside_ours = folder_kind(path.parent) is not None or _legacy_kind(path.parent) is not None
        return inside_ours and all(e.endswith(_FIGURE_SUFFIXES) and (path / e).is_file() for e in entries)
    if kind not in _LEGACY_DIRS:  # kinds that only ever existed with a marker
        return False
    if kind == "run" and not {"config.json", "checkpoint.pt"} <= set(entries):
        return False
    for entry in entries:
        sub = path / entry
        if entry in own or (entry in _LEGACY_DIRS[kind] and sub.is_dir()):
            continue
        if kind == "lengths" and sub.is_file() and sub.suffix in (".png", ".html"):  # its figures
            continue
        if kind == "lengths" and sub.is_dir() and _legacy_kind(sub) == "run":  # one run per variant
            continue
        return False
    return True


def _legacy_kind(path: Path) -> str | None:
    """The kind of a folder by its marker, or a run folder written before folders were marked."""
    found = folder_kind(path)
    if found is not None:
        return found
    try:
        entries = [e for e in os.listdir(path) if e not in (MARKER, LOCK) and not _is_own_temporary(e)]
    except OSError:
        return None
    if entries and path.name == "figures" and _looks_like("figures", path, entries):
        return "figures"
    return "run" if entries and _looks_like("run", path, entries) else None


def _is_own_temporary(entry: str) -> bool:
    match = _TEMP.match(entry)
    return bool(match) and (match.group("name") in _OWN_NAMES or match.group("name").endswith(_FIGURE_SUFFIXES))


def _remove_stale_temporaries(path: Path) -> None:
    """A killed writer's temporary files in ``path`` (we hold its lock: no live writer owns them)."""
    for entry in os.listdir(path):
        if _is_own_temporary(entry):
            (path / entry).unlink(missing_ok=True)


def _remove_own_files(path: Path, top: str) -> None:
    """Delete the files the package wrote in the ``top`` folder ``path`` and the folders of ours
    below it (bottom up: an unmarked folder below is judged ours by the files above, still there)."""
    for folder, dirs, files in os.walk(path, topdown=False):
        folder = Path(folder)
        kind = top if folder == path else _legacy_kind(folder)
        if kind is None:
            continue
        own = own_files(folder, kind)
        for entry in files:
            if entry in own or _is_own_temporary(entry):
                (folder / entry).unlink(missing_ok=True)
        if own - OWN_FILES.get(kind, STUDY_FILES):  # the listed names are gone with their files
            _write_marker(folder, kind)
