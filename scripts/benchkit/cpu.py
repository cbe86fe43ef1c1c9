"""CPU time per role (API, workers, database, broker, provider, load generator) over a phase.

On a 2-core machine the stage that burns a core is the one that sets the pace, so CPU seconds
per role, next to the timestamps, name the bottleneck. The broker is RabbitMQ's `beam.smp`,
shared with whoever else uses it; `other` is the machine's busy time that none of ours
explains (other engineers' runs), so a noisy run shows itself.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass

import psutil

ROLES = ("api", "worker", "database", "broker", "provider", "load_generator")


def _busy_seconds() -> float:
    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    total = sum(times)
    return float(total - idle)


def _broker_pids() -> list[int]:
    pids = []
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] == "beam.smp":
            pids.append(proc.pid)
    return pids


@dataclass(frozen=True, slots=True)
class CpuSnapshot:
    """CPU seconds per role and of the whole machine, at one moment."""

    by_role: dict[str, float]
    machine_busy_s: float


class CpuMeter:
    """Reads the CPU time of the processes of each role (with their child processes)."""

    def __init__(self, roles: Mapping[str, list[int]]) -> None:
        """`roles` maps api / worker / database / provider to pids; the rest is found here."""
        pids = {role: list(roles.get(role, [])) for role in ROLES}
        pids["broker"] = _broker_pids()
        pids["load_generator"] = [os.getpid()]
        self._procs: dict[str, list[psutil.Process]] = {}
        for role, role_pids in pids.items():
            procs = []
            for pid in role_pids:
                try:
                    procs.append(psutil.Process(pid))
                except psutil.Error:
                    continue
            self._procs[role] = procs
        self._last: dict[int, float] = {}

    def _seconds(self, proc: psutil.Process, *, with_children: bool) -> float:
        family = [proc]
        if with_children:
            with contextlib.suppress(psutil.Error):
                family += proc.children(recursive=True)
        total = 0.0
        for member in family:
            try:
                t = member.cpu_times()
                self._last[member.pid] = t.user + t.system
            except psutil.Error:
                pass  # gone: count what it had used when last seen
            total += self._last.get(member.pid, 0.0)
        return total

    def snapshot(self) -> CpuSnapshot:
        """CPU seconds used so far by each role."""
        by_role = {
            role: sum(self._seconds(p, with_children=role != "load_generator") for p in procs)
            for role, procs in self._procs.items()
        }
        return CpuSnapshot(by_role=by_role, machine_busy_s=_busy_seconds())


def cpu_between(
    before: CpuSnapshot, after: CpuSnapshot, *, elapsed_s: float, processes: Mapping[str, int]
) -> dict[str, dict[str, float]]:
    """Per role: CPU seconds, cores used on average, and the share of the machine's 2 cores.

    `processes` gives how many processes a role has, so `saturation` (cores used / processes)
    says how close a role is to its own limit: a single-threaded process cannot use more than 1.
    """
    cores = psutil.cpu_count() or 1
    out: dict[str, dict[str, float]] = {}
    ours = 0.0
    for role in ROLES:
        used = max(0.0, after.by_role.get(role, 0.0) - before.by_role.get(role, 0.0))
        ours += used
        used_cores = used / elapsed_s if elapsed_s > 0 else 0.0
        out[role] = {
            "cpu_s": round(used, 3),
            "cores": round(used_cores, 3),
            "machine_share": round(used_cores / cores, 3),
            "saturation": round(used_cores / max(1, processes.get(role, 1)), 3),
        }
    busy = max(0.0, after.machine_busy_s - before.machine_busy_s)
    other = max(0.0, busy - ours)
    out["other"] = {
        "cpu_s": round(other, 3),
        "cores": round(other / elapsed_s, 3) if elapsed_s > 0 else 0.0,
        "machine_share": round(other / elapsed_s / cores, 3) if elapsed_s > 0 else 0.0,
        "saturation": 0.0,
    }
    out["machine"] = {
        "cpu_s": round(busy, 3),
        "cores": round(busy / elapsed_s, 3) if elapsed_s > 0 else 0.0,
        "machine_share": round(busy / elapsed_s / cores, 3) if elapsed_s > 0 else 0.0,
        "saturation": 0.0,
    }
    return out
