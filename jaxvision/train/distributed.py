"""Several processes (hosts) in one run: start jax.distributed from the environment.

A run has several processes when the environment says so:
  * SLURM: `srun` sets SLURM_JOB_ID, SLURM_STEP_NODELIST, SLURM_NTASKS > 1, SLURM_PROCID, ...
    e.g. two nodes with 8 GPUs each (on GPUs jax gives each SLURM task one GPU, so one task per
    GPU); build .venv once beforehand (`./launch.sh --help`) so that the tasks do not all build
    it at once, and put the workdir on a shared file system:
      #SBATCH --nodes=2 --ntasks-per-node=8 --gpus-per-node=8
      srun ./launch.sh experiments/flowers_inception.py --workdir /shared/runs/flowers
  * by hand: JAX_COORDINATOR_ADDRESS (host:port of process 0), JAX_NUM_PROCESSES, JAX_PROCESS_ID
    e.g. two processes on one machine, in two shells:
      JAX_COORDINATOR_ADDRESS=127.0.0.1:12345 JAX_NUM_PROCESSES=2 JAX_PROCESS_ID=0 ./launch.sh ...
      JAX_COORDINATOR_ADDRESS=127.0.0.1:12345 JAX_NUM_PROCESSES=2 JAX_PROCESS_ID=1 ./launch.sh ...
Every process runs the same command and reads its own share of the data; process 0 writes the
logs; all of them take part in writing checkpoints.
`initialize_from_environment` must run before anything touches a device; `fit` calls it first.

When a peer dies, the others stop instead of waiting forever in a collective: a collective with
the dead peer fails at once when its connection breaks (`fit` raises PeerLost), and otherwise
the coordination service misses the peer's heartbeats and, after `peer_timeout_s`, reports it
to every other process, which then says which process is missing and exits (code 1), in place
of jax's own abort with a C++ stack trace (jaxvision/supervisor.py). A process whose peers
never connect stops after `peer_timeout_s` with a sentence that says so.
"""

from __future__ import annotations

import os
import re

import jax


class PeerLost(RuntimeError):
    """A collective with the other processes failed: one of them has probably died."""

    @classmethod
    def from_error(cls, error: Exception) -> "PeerLost":
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        task = re.search(r"task[:_ ](\d+)", str(error))  # jax names the peer it lost as task N, when it knows
        who = f"process {task.group(1)}" if task and int(task.group(1)) != jax.process_index() else "a peer"
        return cls(
            f"Process {jax.process_index()} of {jax.process_count()}: a collective with the other processes "
            f"failed ({reason[:160]}): {who} has probably died or been stopped; see its log, then start every "
            f"process again to resume from the last checkpoint."
        )


def _initialize(peer_timeout_s: int, **where) -> None:
    jax.distributed.initialize(heartbeat_timeout_seconds=peer_timeout_s, initialization_timeout=peer_timeout_s, **where)


_BY_HAND = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")
_SLURM = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID")


def initialize_from_environment(peer_timeout_s: int = 60) -> bool:
    """Calls `jax.distributed.initialize` when the environment names several processes.

    Returns True when this is a multi-process run. Calling it again is harmless.
    """
    if jax.distributed.is_initialized():
        return True
    env = os.environ
    given = [name for name in _BY_HAND if env.get(name)]
    if given:
        missing = [name for name in _BY_HAND if name not in given]
        if missing:
            raise ValueError(
                f"{', '.join(given)} is set but {', '.join(missing)} is not: set all of "
                f"{', '.join(_BY_HAND)} for a multi-process run, or none of them."
            )
        num_processes, process_id = int(env["JAX_NUM_PROCESSES"]), int(env["JAX_PROCESS_ID"])
        if num_processes == 1:
            return False
        if not 0 <= process_id < num_processes:
            raise ValueError(
                f"JAX_PROCESS_ID={process_id} is outside 0..{num_processes - 1}: give each process "
                f"a distinct id below JAX_NUM_PROCESSES."
            )
        _initialize(
            peer_timeout_s,
            coordinator_address=env["JAX_COORDINATOR_ADDRESS"],
            num_processes=num_processes,
            process_id=process_id,
        )
        return True
    if all(name in env for name in _SLURM) and int(env["SLURM_NTASKS"]) > 1:
        _initialize(peer_timeout_s)
        return True
    return False
