"""A loopback copy of the data for tests that fetch it as a user would: a static HTTP server on
127.0.0.1, an environment without proxies, and mirror folders of symlinks (nothing is copied)."""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

PROXY_VARIABLES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[SimpleNamespace]:
    """A static HTTP server for ``folder`` on 127.0.0.1 (a free port), in a thread; records paths."""
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args: object) -> None:  # keep the test output clean
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=folder))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{server.server_port}", requests=requests)
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """Environment variables for one block; proxies never apply to the loopback server."""
    with pytest.MonkeyPatch.context() as mp:
        for key in PROXY_VARIABLES:
            mp.delenv(key, raising=False)
        mp.setenv("no_proxy", "127.0.0.1")
        for key, value in values.items():
            mp.setenv(key, value)
        yield


def link_mirror(source: Path, mirror: Path, relatives: list[str]) -> None:
    """``mirror/<relative>`` -> ``source/<relative>`` for each file (symlinks: nothing is copied)."""
    for relative in relatives:
        target = mirror / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(source / relative)
