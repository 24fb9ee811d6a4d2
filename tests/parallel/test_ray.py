"""The Ray executor: argument checks, a local instance that stays on loopback, results equal to
the serial executor's, and dead workers retried then failed."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
from pathlib import Path

import pytest

from nas_gym.parallel import ray as ray_module
from nas_gym.parallel.executors import SerialExecutor
from nas_gym.parallel.ray import RayExecutor
from tests.helpers.fakes import hash_accuracy
from tests.parallel.tasks import ARCHS, Killer, not_a_dict, slower_first, without_seconds


def test_ray_executor_argument_errors() -> None:
    pytest.importorskip("ray")
    with pytest.raises(ValueError, match="expected num_gpus as a non-negative number, got -1.0"):
        RayExecutor(num_gpus=-1)
    with pytest.raises(ValueError, match="expected num_cpus as a positive number, got 0.0"):
        RayExecutor(num_cpus=0)
    with pytest.raises(ValueError, match="expected address as 'host:port'"):
        RayExecutor(address=" ")


# ---------------------------------------------------------------------------------------- loopback
def _descendants(pid: int) -> set[int]:
    """``pid`` and every process below it (Linux ``/proc``)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        found.add(current)
        todo.extend(children.get(current, []))
    return found


def _listening_addresses(pids: set[int]) -> list[tuple[str, int]]:
    """``(address, port)`` of each TCP socket on which ``pids`` listen."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    addresses = []
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                continue
            address, port = fields[1].split(":")
            raw = bytes.fromhex(address)
            # /proc stores each 32-bit word in host (little-endian) order.
            packed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            addresses.append((socket.inet_ntop(family, packed), int(port, 16)))
    return addresses


def _is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads listening sockets from Linux /proc")
def test_local_ray_instance_listens_on_loopback_only_without_dashboard(ray_executor: RayExecutor) -> None:
    import ray

    node = ray.nodes()[0]
    assert ray_module.ray_node_address() == "127.0.0.1" and node["NodeManagerAddress"] == "127.0.0.1"
    assert node["Resources"]["CPU"] == 2.0
    pids = _descendants(os.getpid())
    commands = []
    for pid in pids:
        with contextlib.suppress(OSError):
            commands.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" "))
    assert any(b"gcs_server" in c for c in commands)  # the instance runs below this process
    addresses = _listening_addresses(pids)
    assert addresses and all(_is_loopback(a) for a, _ in addresses), addresses
    # No dashboard: no web address, no server on its port; Ray's head process for it runs in
    # its minimal mode (usage statistics only, no job API).
    assert not ray._private.worker._global_node.address_info.get("webui_url")
    assert 8265 not in {port for _, port in addresses}
    assert all(b"--minimal" in c for c in commands if b"dashboard/dashboard.py" in c)
    # A second executor shares the instance; closing it leaves the first one working.
    RayExecutor(workers=2).close()
    assert ray.is_initialized()


# ---------------------------------------------------------------------------------------- tasks
def test_ray_results_equal_serial_and_dead_workers_are_retried(ray_executor: RayExecutor, tmp_path) -> None:
    results = ray_executor.evaluate(slower_first, ARCHS)
    assert without_seconds(results) == without_seconds(SerialExecutor().evaluate(slower_first, ARCHS))
    archs = ["a", "die-once-3", "die-always-3", "b"]
    with pytest.warns(
        RuntimeWarning, match=r"evaluation of 'die-always-3' failed: its worker died on each of 2 attempt"
    ):
        results = ray_executor.evaluate(Killer(tmp_path), archs)
    assert [r["status"] for r in results] == ["ok", "ok", "failed", "ok"]
    assert results[1]["accuracy"] == hash_accuracy("die-once-3")["accuracy"]
    with pytest.raises(TypeError, match="expected the evaluator to return a dict"):
        ray_executor.evaluate(not_a_dict, ["a"])


def test_ray_map_reports_results_and_refuses_work_once_closed(ray_executor: RayExecutor) -> None:
    seen: dict[int, int] = {}
    assert ray_executor.map(len, ["a", "bcd"], on_result=seen.__setitem__) == [1, 3]
    assert seen == {0: 1, 1: 3} and ray_executor.map(len, []) == []
    executor = RayExecutor(workers=1)  # shares the running instance
    executor.close()
    with pytest.raises(RuntimeError, match="expected an open executor, got one that was closed"):
        executor.map(len, ["a"])
