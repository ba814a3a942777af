"""A multi-process run under a watcher: jax's abort on a lost peer becomes one sentence.

When a peer of a multi-process run dies (or never starts), jax's coordination client ends the
surviving processes from one of its C++ threads: a fatal log line, the RPC that failed and a
stack trace, exit code 134. No Python code runs then, so `run` starts the command as a child
process, passes its output through as it comes, holds back that fatal block, and says instead
which peer is missing and how to resume. Signals reach the child as they would have reached
the command (SIGTERM sent to the watcher alone is passed on), and the child dies with the watcher.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import subprocess
import sys

ENV_FLAG = "JAXVISION_SUPERVISED"
_FATAL = re.compile(rb"^F\d{4} .*Terminating process because the JAX distributed service detected fatal errors")
_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)")


def _explain(block: str) -> str:
    """One sentence from the fatal block's status text."""
    status = re.search(r"absl::Status: (.*)", block)
    status = status.group(1).strip() if status else "no status"
    process = os.environ.get("JAX_PROCESS_ID") or os.environ.get("SLURM_PROCID") or "?"
    count = os.environ.get("JAX_NUM_PROCESSES") or os.environ.get("SLURM_NTASKS") or "?"
    resume = "start every process again with the same command to resume from the last checkpoint"
    if "RegisterTask" in block or ("DEADLINE_EXCEEDED" in status and "Barrier" not in block):
        return (
            f"process {process} of {count} stops: not all {count} processes connected to the coordinator in "
            f"time ({status}); start every one of them, with the same coordinator address and process ids "
            f"0 to {int(count) - 1 if count.isdigit() else 'N-1'}."
        )
    task = re.search(r"task[:_ ](\d+)", block)
    if task and task.group(1) != process:
        who = f"process {task.group(1)} stopped answering"
    elif "coordination service" in block or process != "0":
        who = "process 0, which runs the coordination service, stopped answering"
    else:
        who = "a peer stopped answering"
    return f"process {process} of {count} stops: {who} ({status.split('.')[0][:120]}); {resume}."


class _Stream:
    """The child's stderr as it comes, less jax's fatal block: from its first line on, nothing is shown."""

    def __init__(self):
        self.held: list[bytes] = []
        self._pending = b""
        self._last = b"\n"
        self.said = False  # whether the child's own one-sentence error was shown

    @property
    def line_break(self) -> str:
        """What starts a new line after what was shown (a partial line shown last needs one)."""
        return "" if self._last == b"\n" else "\n"

    def feed(self, chunk: bytes) -> bytes:
        """What to show now of CHUNK (b"" at the end of the stream)."""
        self._pending += chunk
        lines = _LINE.findall(self._pending)
        self._pending = self._pending[sum(map(len, lines)) :]
        if not chunk and self._pending:
            lines, self._pending = [*lines, self._pending], b""
        shown = []
        for line in lines:
            if self.held or _FATAL.match(line):
                self.held.append(line)
            else:
                shown.append(line)
                self.said = self.said or line.startswith(b"error: ")
        # A progress bar's partial line is shown at once, unless it may begin the fatal block or
        # comes after it (the block's lines must not reach the user, whole or in parts).
        if self._pending and not self.held and not re.match(rb"F(\d|$)", self._pending):
            shown.append(self._pending)
            self._pending = b""
        shown = b"".join(shown)
        if shown:
            self._last = shown[-1:]
        return shown


def die_with_parent() -> None:
    """In a child: SIGKILL when its parent dies (Linux), so that killing the parent kills the child."""
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def multi_process_environment() -> bool:
    """Whether the environment starts this process as one of several (see train/distributed.py)."""
    env = os.environ
    if env.get("JAX_NUM_PROCESSES"):
        return env["JAX_NUM_PROCESSES"].isdigit() and int(env["JAX_NUM_PROCESSES"]) > 1
    return (
        all(env.get(k) for k in ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_PROCID"))
        and env.get("SLURM_NTASKS", "1").isdigit()
        and int(env["SLURM_NTASKS"]) > 1
    )


def run(argv: list[str]) -> int:
    """Runs `python -m jaxvision.main ARGV` as a child and returns its exit code (1 for a lost peer)."""
    child = subprocess.Popen(
        [sys.executable, "-m", "jaxvision.main", *argv],
        stderr=subprocess.PIPE,
        env=dict(os.environ, **{ENV_FLAG: "1"}),
        preexec_fn=die_with_parent,
    )
    signal.signal(signal.SIGTERM, lambda signum, frame: child.send_signal(signum))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the child from the terminal itself
    stream, out = _Stream(), sys.stderr.buffer
    while True:
        chunk = os.read(child.stderr.fileno(), 65536)
        out.write(stream.feed(chunk))
        out.flush()
        if not chunk:
            break
    code = child.wait()
    if stream.held:
        if not stream.said:  # else the child said it first, and jax's abort came as it left
            block = b"".join(stream.held).decode("utf-8", "replace")
            print(f"{stream.line_break}error: {_explain(block)}", file=sys.stderr, flush=True)
        return 1
    return code if code >= 0 else 128 - code
