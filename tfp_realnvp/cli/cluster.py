"""This process's place in a multi-worker job, read from ``TF_CONFIG`` before TensorFlow starts.

``tf.distribute.MultiWorkerMirroredStrategy`` reads the standard ``TF_CONFIG`` variable::

    {"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}

The chief (a ``"chief"`` task if the cluster has one, else worker 0) alone writes the run
directory; every other worker writes its copy into a temporary directory that is removed.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

__all__ = ["ClusterError", "WorkerLost", "Task", "lost_worker", "task_from_env"]


class ClusterError(ValueError):
    """A missing or malformed ``TF_CONFIG``, with a one-line reason."""


class WorkerLost(RuntimeError):
    """Another process of the job stopped, so this one cannot go on; with a one-line reason."""


@dataclass(frozen=True)
class Task:
    """One process of the job: ``index`` counts all workers, the chief first."""

    index: int
    num_workers: int

    @property
    def is_chief(self) -> bool:
        return self.index == 0


def task_from_env(environ=None) -> Task:
    """This process's `Task`, from ``TF_CONFIG``.

    Raises:
      ClusterError: naming what is missing or wrong in ``TF_CONFIG``.
    """
    text = (os.environ if environ is None else environ).get("TF_CONFIG")
    if not text:
        raise ClusterError(
            "--distribute multi-worker reads the cluster from TF_CONFIG, which is not set; "
            'e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:2222", "host2:2222"]}, '
            '"task": {"type": "worker", "index": 0}}\''
        )
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        kind, index = task["type"], int(task["index"])
        chiefs = list(cluster.get("chief", []))
        workers = list(cluster.get("worker", []))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ClusterError(
            'TF_CONFIG must be JSON with "cluster" (lists of host:port) and "task" ({"type": '
            f'"worker", "index": 0}}); got {text[:80]!r}'
        ) from None
    members = {"chief": chiefs, "worker": workers}
    if kind not in members or not 0 <= index < len(members[kind]):
        raise ClusterError(
            f"TF_CONFIG: task {kind} {index} is not in the cluster ({len(chiefs)} chief, "
            f"{len(workers)} workers)"
        )
    offset = len(chiefs) if kind == "worker" else 0
    return Task(index=offset + index, num_workers=len(chiefs) + len(workers))


def lost_worker(message: str) -> WorkerLost:
    """The one-line `WorkerLost` for TensorFlow's report that collectives were aborted because
    tasks stopped sending heartbeats (``message``, the ``UnavailableError``'s text)."""
    _, _, after = message.partition("unhealthy")
    tasks = sorted(
        {f"{kind} {index}" for kind, index in re.findall(r"job:(\w+)/\S*task:(\d+)", after)}
    )
    who = ", ".join(tasks) if tasks else "another worker"
    return WorkerLost(
        f"{who} of the job stopped, so training cannot go on; restart every worker with the "
        "same command to resume from the backups"
    )
