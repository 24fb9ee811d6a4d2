"""``--ray-address`` to a cluster that a user started with ``ray start --head``: a real head on
loopback that requires Ray's token (as one does on a machine that holds a token), a search that
runs on it, and a client without the token that gets one line saying what to set.

The head listens on 127.0.0.1 only (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``: otherwise Ray swaps
in the machine's outward address) with free ports, a temporary ``HOME`` (where Ray keeps its
token) and a temporary session folder. It is stopped through its own process group, not with
``ray stop``, which stops every Ray instance of the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(180)


@dataclass(frozen=True)
class Head:
    address: str
    env: dict[str, str]
    """The environment of a client on the head's machine, with the token at Ray's default path."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop_group(pgid: int) -> None:
    """SIGTERM the head's process group, then SIGKILL what is left (Ray's GCS can take its time)."""
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


@pytest.fixture(scope="module")
def ray_head(data_dir: Path) -> Iterator[Head]:
    pytest.importorskip("ray")
    ray_cli = Path(sys.executable).with_name("ray")
    if not ray_cli.exists():
        pytest.skip(f"no ray command beside {sys.executable}")
    # Short, not under pytest's tmp_path: Ray's Unix sockets live below it (at most 107 bytes).
    root = Path(tempfile.mkdtemp(prefix="ngray-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(HOME=str(root / "home"), RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", NAS_GYM_DATA=str(data_dir))
    (root / "home").mkdir()
    pgid = None
    try:
        subprocess.run([ray_cli, "get-auth-token", "--generate"], env=env, check=True, capture_output=True)
        port = _free_port()
        start = subprocess.Popen(
            [
                ray_cli,
                "start",
                "--head",
                "--node-ip-address=127.0.0.1",
                f"--port={port}",
                "--num-cpus=1",
                "--num-gpus=0",
                f"--temp-dir={root / 'ray'}",
                "--include-dashboard=false",
                f"--dashboard-port={_free_port()}",
                f"--dashboard-agent-listen-port={_free_port()}",
                f"--ray-client-server-port={_free_port()}",
                "--disable-usage-stats",
            ],  # fmt: skip
            env=env,
            start_new_session=True,  # the head's processes stay in this group: stopped by its id
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        pgid = start.pid
        output, _ = start.communicate(timeout=90)
        if start.returncode != 0:
            raise RuntimeError(
                f"expected `ray start --head` to start, got exit code {start.returncode}:\n{output}"
            )
        assert "Token authentication is enabled" in output  # what a token on the machine does
        yield Head(f"127.0.0.1:{port}", env)
    finally:
        if pgid is not None:
            _stop_group(pgid)
        shutil.rmtree(root, ignore_errors=True)


def _search(head: Head, out: Path, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "nas_gym.experiments.cli", "search", "--env", "NASBench201-v0"]
    command += ["--agent", "random", "--episodes", "3", "--executor", "ray", "--ray-address", head.address]
    return subprocess.run(
        [*command, "--out", str(out)], env={**head.env, **env}, capture_output=True, text=True, timeout=120
    )


def test_a_search_runs_on_a_cluster_that_requires_the_token_of_this_machine(
    ray_head: Head, tmp_path: Path
) -> None:
    # No RAY_AUTH_MODE: Ray's client would send no token to an explicit address and be refused.
    done = _search(ray_head, tmp_path / "run")
    assert done.returncode == 0, done.stderr
    assert f"Connecting to existing Ray cluster at address: {ray_head.address}" in done.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert (summary["episodes"], summary["executor"]) == (3, "ray")


def test_a_cluster_that_refuses_the_client_gives_one_line_saying_what_to_set(
    ray_head: Head, tmp_path: Path
) -> None:
    home = tmp_path / "home"  # a machine without the cluster's token
    home.mkdir()
    # Ray retries a refused connection for 20 s by default; 2 attempts show the same refusal.
    refused = _search(ray_head, tmp_path / "run", HOME=str(home), RAY_gcs_server_port_wait_time_s="2")
    assert refused.returncode == 2
    assert "Traceback" not in refused.stderr
    ours = [line for line in refused.stderr.splitlines() if line.startswith("nas-gym")]
    assert ours == [
        f"nas-gym: error: expected the Ray cluster at {ray_head.address} to accept this client, got a "
        "refusal: it uses token authentication; set RAY_AUTH_MODE=token and put its token in "
        "RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token (ray get-auth-token on its head prints it)"
    ]
    assert refused.stderr.rstrip().splitlines()[-1] == ours[0]
    assert not (tmp_path / "run").exists()


def test_the_token_goes_only_to_this_machine_and_only_unasked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ray")
    from nas_gym.parallel.ray import _address_host, refusal_message, use_local_token

    hosts = [_address_host(a) for a in ("127.0.0.1:6379", "ray://10.0.0.5:10001", "[::1]:6379", "head")]
    assert hosts == ["127.0.0.1", "10.0.0.5", "::1", "head"]
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    assert not use_local_token("192.0.2.1:6379")  # TEST-NET-1: never this machine
    assert not use_local_token("head.example:6379")  # names other than localhost are not looked up
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    assert not use_local_token("127.0.0.1:6379")  # the user's choice stands
    unreachable = ConnectionError("Failed to connect to Ray cluster at 127.0.0.1:1")
    assert refusal_message("127.0.0.1:1", unreachable) == (
        "expected a Ray cluster at 127.0.0.1:1, got: Failed to connect to Ray cluster at 127.0.0.1:1; "
        "start one there (ray start --head) or pass the address of one (--ray-address)"
    )
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    wrong = ConnectionError("Failed to connect")
    wrong.__cause__ = RuntimeError("ray.exceptions.AuthenticationError: RPC error: InvalidAuthToken")
    assert refusal_message("127.0.0.1:1", wrong).startswith(
        "expected the Ray cluster at 127.0.0.1:1 to accept this client's token, got a refusal: put its token in"
    )
