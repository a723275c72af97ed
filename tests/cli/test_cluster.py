"""TF_CONFIG read into one process's place in the job: the chief first, then the workers."""

import json

import pytest

from tfp_realnvp.cli.cluster import ClusterError, task_from_env


def _config(kind: str, index: int, chiefs: int = 1, workers: int = 3) -> dict:
    cluster = {"worker": [f"w{i}:2222" for i in range(workers)]}
    if chiefs:
        cluster["chief"] = ["c0:2222"]
    return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}})}


def test_workers_count_after_the_chief():
    # The index names a process's backup and decides who publishes: an offset of 0 would
    # give worker 0 the chief's index, and two processes would write one backup.
    assert task_from_env(_config("chief", 0)).index == 0
    assert [task_from_env(_config("worker", i)).index for i in range(3)] == [1, 2, 3]
    assert task_from_env(_config("worker", 2)).num_workers == 4
    assert task_from_env(_config("chief", 0)).is_chief
    assert not task_from_env(_config("worker", 0)).is_chief
    # Without a chief, worker 0 is the chief.
    assert task_from_env(_config("worker", 0, chiefs=0)).is_chief
    assert task_from_env(_config("worker", 2, chiefs=0)).index == 2


def test_a_task_outside_the_cluster_is_named():
    with pytest.raises(ClusterError, match=r"task worker 3 is not in the cluster \(1 chief, 3"):
        task_from_env(_config("worker", 3))
    with pytest.raises(ClusterError, match="must be JSON"):
        task_from_env({"TF_CONFIG": "{not json"})


def test_the_cluster_comes_from_the_environment_and_may_be_a_chief_alone(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", _config("worker", 1)["TF_CONFIG"])
    assert task_from_env() == task_from_env(_config("worker", 1))
    alone = {"cluster": {"chief": ["c0:2222"]}, "task": {"type": "chief", "index": 0}}
    assert task_from_env({"TF_CONFIG": json.dumps(alone)}).num_workers == 1


def test_a_missing_or_malformed_tf_config_is_refused_whole(refusal):
    assert refusal(ClusterError, task_from_env, {}) == (
        "--distribute multi-worker reads the cluster from TF_CONFIG, which is not set; "
        'e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:2222", "host2:2222"]}, '
        '"task": {"type": "worker", "index": 0}}\''
    )
    text = '{"cluster": {"worker": ["w0:2222"]}, "task": {"type": "worker"}}' + " " * 20
    assert refusal(ClusterError, task_from_env, {"TF_CONFIG": text}) == (
        'TF_CONFIG must be JSON with "cluster" (lists of host:port) and "task" ({"type": '
        f'"worker", "index": 0}}); got {text[:80]!r}'
    )
    assert len(text) > 80
