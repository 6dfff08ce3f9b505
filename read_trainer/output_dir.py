"""The output folder: one run at a time, no silent mixing with an older run, atomic exports.

* ``claim_output_dir`` refuses a folder that already holds files unless the run resumes
  (``resume_from_checkpoint``) or ``overwrite_output_dir`` is set, and takes a lock file
  (``.read_trainer.lock``, holding the pid and host) that a second run on the same folder
  is refused by. A lock left by a process that no longer exists is taken over. The lock
  is released when the process exits.
* ``staged_export`` writes the final export into a staging folder inside ``output_dir``
  and moves it into place only once it is complete, so a run killed while saving
  leaves the previous export as it was.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import socket
from contextlib import contextmanager

logger = logging.getLogger(__name__)

LOCK_NAME = ".read_trainer.lock"
STAGING_NAME = ".export-staging"

_claimed: set[str] = set()  # folders this process has claimed (a claim is idempotent)


class OutputDirError(RuntimeError):
    """The output folder is in use, or holds another run's files."""


def claim_output_dir(output_dir: str, *, resuming: bool, overwrite: bool, is_main_process: bool = True) -> None:
    """Check ``output_dir`` may be written by this run and lock it against concurrent runs.

    Only the main process checks and locks (the others write into the folder it claimed).
    """
    folder = os.path.abspath(output_dir)
    if not is_main_process or folder in _claimed:
        return
    if os.path.isdir(folder) and not resuming and not overwrite:
        present = sorted(name for name in os.listdir(folder) if name != LOCK_NAME)
        if present:
            shown = ", ".join(present[:5]) + (f" (+{len(present) - 5} more)" if len(present) > 5 else "")
            raise OutputDirError(
                f"output_dir {folder} is not empty ({shown}); pass --resume_from_checkpoint to continue the run "
                "in it, --overwrite_output_dir to train over it, or choose another folder")
    os.makedirs(folder, exist_ok=True)
    _take_lock(os.path.join(folder, LOCK_NAME))
    _claimed.add(folder)


def _take_lock(path: str) -> None:
    record = f"{os.getpid()} {socket.gethostname()}\n"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder, host = _lock_holder(path)
            here = host in (None, socket.gethostname())
            # A process on another machine (a shared filesystem) cannot be probed: assume it runs.
            if holder is not None and (not here or (holder != os.getpid() and _alive(holder))):
                where = "" if here else f" on {host}"
                raise OutputDirError(
                    f"output_dir {os.path.dirname(path)} is in use by another run: lock file {path} is held by "
                    f"pid {holder}{where}. Wait for it to finish, or choose another folder") from None
            # A dead holder (a crashed or killed run), or this very process: take the lock over.
            if holder != os.getpid():
                logger.warning("taking over the stale lock %s (pid %s no longer runs)", path, holder)
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
            continue
        with os.fdopen(fd, "w") as f:
            f.write(record)
        atexit.register(_release_lock, path, os.getpid())
        return
    raise OutputDirError(f"could not take the lock file {path}: another run keeps creating it")


def _lock_holder(path: str) -> tuple[int | None, str | None]:
    """(pid, host) written in a lock file; (None, None) when unreadable or half-written (stale)."""
    try:
        with open(path, encoding="utf-8") as f:
            fields = f.read().split()
        return int(fields[0]), (fields[1] if len(fields) > 1 else None)
    except (OSError, ValueError, IndexError):
        return None, None


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _release_lock(path: str, pid: int) -> None:
    if _lock_holder(path) == (pid, socket.gethostname()):
        try:
            os.remove(path)
        except OSError:
            pass
    _claimed.discard(os.path.dirname(path))


def release_output_dir(output_dir: str) -> None:
    """Release this process's lock on ``output_dir`` now (it is released at exit otherwise)."""
    _release_lock(os.path.join(os.path.abspath(output_dir), LOCK_NAME), os.getpid())


@contextmanager
def staged_export(output_dir: str):
    """Yield a staging folder to write an export into; move its files into ``output_dir`` once complete.

    Nothing in ``output_dir`` changes until the body finishes: a crash or kill meanwhile
    leaves the previous export intact (and a staging folder, cleared by the next export).
    The move is one ``os.replace`` per file (atomic each, same filesystem), weights last.
    """
    staging = os.path.join(output_dir, STAGING_NAME)
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _move_into_place(staging, output_dir)


def _is_weights(name: str) -> bool:
    return name.endswith(".safetensors") or name == "model.safetensors.index.json"


def _move_into_place(staging: str, output_dir: str) -> None:
    new = sorted(os.listdir(staging), key=_is_weights)  # weights last: configs never point at missing weights
    for name in new:
        source, target = os.path.join(staging, name), os.path.join(output_dir, name)
        if os.path.isdir(source):
            # A sub-folder (the LoRA adapter): swap whole folders, the old one removed after.
            old = target + ".old"
            shutil.rmtree(old, ignore_errors=True)
            if os.path.isdir(target):
                os.replace(target, old)
            os.replace(source, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(source, target)
    # Weights of the previous export that the new one does not have (e.g. other shards) would
    # be mixed with it by a loader: remove them.
    if "model.safetensors" in new or "model.safetensors.index.json" in new:
        for name in os.listdir(output_dir):
            path = os.path.join(output_dir, name)
            if os.path.isfile(path) and _is_weights(name) and name.startswith("model") and name not in new:
                os.remove(path)
    shutil.rmtree(staging, ignore_errors=True)
