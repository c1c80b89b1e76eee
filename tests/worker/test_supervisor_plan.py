"""Which worker nodes `platform worker` starts for a machine's GPUs."""

from __future__ import annotations

import pytest

from twinplatform.worker.supervisor import plan_nodes


def test_one_node_per_gpu_with_its_own_device() -> None:
    plan = plan_nodes(["gpu"], ["0", "1"], gpus_per_process=1, concurrency=4, visible_gpus=2)
    assert [(n.queues, n.gpus, n.concurrency) for n in plan.nodes] == [(("gpu-1",), ("0",), 1), (("gpu-1",), ("1",), 1)]
    env = plan.nodes[1].environment()
    assert env["CUDA_VISIBLE_DEVICES"] == "1" and env["PLATFORM_WORKER_GPUS"] == "1"


def test_two_gpu_processes_serve_one_and_two_gpu_stages() -> None:
    plan = plan_nodes(["gpu", "cpu"], [], gpus_per_process=2, concurrency=3, visible_gpus=4)
    gpu_nodes = [n for n in plan.nodes if n.gpus]
    assert [n.gpus for n in gpu_nodes] == [("0", "1"), ("2", "3")]
    assert all(n.queues == ("gpu-1", "gpu-2") for n in gpu_nodes)
    cpu = next(n for n in plan.nodes if not n.gpus)
    assert cpu.queues == ("cpu",) and cpu.concurrency == 3 and cpu.environment()["CUDA_VISIBLE_DEVICES"] == ""


def test_no_gpu_says_so_and_serves_cpu() -> None:
    plan = plan_nodes(["gpu"], [], gpus_per_process=1, concurrency=2, visible_gpus=0)
    assert [n.queues for n in plan.nodes] == [("cpu",)]
    assert "no GPU is visible" in plan.notes[0]


def test_bad_plans_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown queue"):
        plan_nodes(["gpus"], [], gpus_per_process=1, concurrency=1, visible_gpus=1)
    with pytest.raises(ValueError, match="do not split"):
        plan_nodes(["gpu"], ["0", "1", "2"], gpus_per_process=2, concurrency=1, visible_gpus=3)
