"""`platform worker`: plans worker nodes (one per GPU group, or one CPU node) and a reaper, and supervises them.

Each node is its own process with its own CUDA_VISIBLE_DEVICES, so CUDA is only ever initialised in a child
that owns its GPUs. SIGTERM/SIGINT are passed on (Celery's warm shutdown: running stages finish) and waited
for; a node that dies unexpectedly is started again.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

log = logging.getLogger("twinplatform.worker")


@dataclass(frozen=True)
class NodeSpec:
    name: str
    queues: tuple[str, ...]
    concurrency: int
    gpus: tuple[str, ...] = ()

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "twinplatform.worker.node",
            "--queues",
            ",".join(self.queues),
            "--concurrency",
            str(self.concurrency),
            "--hostname",
            self.name,
        ]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(self.gpus)
        else:
            env["CUDA_VISIBLE_DEVICES"] = ""  # a CPU node must not grab a GPU by accident
        env["PLATFORM_WORKER_GPUS"] = str(len(self.gpus))
        return env


@dataclass
class Plan:
    nodes: list[NodeSpec]
    notes: list[str] = field(default_factory=list)


def plan_nodes(
    queues: list[str], gpus: list[str], *, gpus_per_process: int, concurrency: int, visible_gpus: int
) -> Plan:
    """Which nodes to run. GPU nodes serve gpu-1..gpu-K (K = GPUs per process), one process per GPU group."""
    host = socket.gethostname()
    notes: list[str] = []
    wants_gpu = "gpu" in queues
    wants_cpu = "cpu" in queues
    unknown = [q for q in queues if q not in ("cpu", "gpu")]
    if unknown:
        raise ValueError(f"unknown queue(s) {unknown}: use cpu and/or gpu")
    nodes: list[NodeSpec] = []
    if wants_gpu and visible_gpus == 0:
        notes.append("no GPU is visible on this machine: serving the cpu queue instead of gpu")
        wants_cpu, wants_gpu = True, False
    if wants_gpu:
        devices = gpus or [str(index) for index in range(visible_gpus)]
        if len(devices) % gpus_per_process:
            raise ValueError(f"{len(devices)} GPU(s) do not split into groups of {gpus_per_process}")
        for start in range(0, len(devices), gpus_per_process):
            group = tuple(devices[start : start + gpus_per_process])
            served = tuple(f"gpu-{count}" for count in range(1, gpus_per_process + 1))
            nodes.append(NodeSpec(f"gpu{'_'.join(group)}@{host}", served, 1, group))
    if wants_cpu:
        nodes.append(NodeSpec(f"cpu@{host}", ("cpu",), concurrency))
    return Plan(nodes, notes)


def supervise(plan: Plan, *, reaper: bool, restart_delay_s: float = 2.0) -> int:
    """Run the nodes (and a reaper) until SIGTERM/SIGINT; pass the signal on and wait for them to finish."""
    children: dict[str, tuple[list[str], dict[str, str], subprocess.Popen[bytes]]] = {}

    def start(name: str, command: list[str], env: dict[str, str]) -> None:
        children[name] = (command, env, subprocess.Popen(command, env=env))
        log.info("started %s (pid %d)", name, children[name][2].pid)

    for node in plan.nodes:
        start(node.name, node.command(), node.environment())
    if reaper:
        start("reaper", [sys.executable, "-m", "twinplatform.worker.reaper_loop"], dict(os.environ))
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for _command, _env, process in children.values():
            if process.poll() is None:
                process.send_signal(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while True:
        if stopping:
            for _command, _env, process in children.values():
                process.wait()
            return 0
        for name, (command, env, process) in list(children.items()):
            code = process.poll()
            if code is not None and not stopping:
                log.warning("%s exited with %s; starting it again in %.0f s", name, code, restart_delay_s)
                time.sleep(restart_delay_s)
                if not stopping:
                    start(name, command, env)
        time.sleep(0.2)
