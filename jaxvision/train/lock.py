"""One training run per workdir: WORKDIR/run.lock names the process that writes there.

Two runs writing one workdir would mix their metrics.jsonl lines and race for the same
checkpoint steps. A run opened for writing (training, the warm start) takes the lock; a second
one is refused with a sentence that names the holder; a lock whose process is gone (same host,
pid no longer alive) is taken over with a notice. Scoring and reports only read, and take none.
Only process 0 of a multi-process run takes it: the others write no workdir files.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import sys

LOCK = "run.lock"
_held: dict[str, int] = {}  # lock path -> how many opens of this process hold it


class WorkdirBusy(RuntimeError):
    """Another live run writes this workdir."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _holder(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}  # half written or unreadable: its writer died between create and write


def acquire(workdir: str) -> str:
    """Takes `workdir`'s lock (again, if this process holds it); returns its path for `release`."""
    path = os.path.join(workdir, LOCK)
    if path in _held:
        _held[path] += 1
        return path
    since = datetime.datetime.now().isoformat(" ", "seconds")
    mine = {"host": socket.gethostname(), "pid": os.getpid(), "since": since}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(path)
            same_host = holder.get("host") == mine["host"]
            if holder and not (same_host and not _alive(int(holder.get("pid", 0)))):
                where = "" if same_host else f" on host {holder.get('host')}"
                raise WorkdirBusy(
                    f"{workdir} is in use by another run (pid {holder.get('pid')}{where}, since "
                    f"{holder.get('since')}): wait for it to finish or stop it, or give another --workdir (if "
                    f"that run is gone for good, delete {path})."
                ) from None
            _notice(
                f"notice: taking over {path}, left by "
                + (f"pid {holder['pid']}, which is no longer running." if holder else "a run that died as it started.")
            )
            os.remove(path)
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(mine, f)
        _held[path] = 1
        return path
    raise WorkdirBusy(f"{path} keeps reappearing: another run is starting in {workdir}; give another --workdir.")


def release(path: str) -> None:
    _held[path] -= 1
    if _held[path] == 0:
        del _held[path]
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


def _notice(message: str) -> None:
    print(message, file=sys.stderr)
