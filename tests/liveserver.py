"""An ASGI app served by uvicorn on a loopback socket in a thread, for tests that need
real HTTP (streams, browsers, clients in other threads)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


def bound() -> socket.socket:
    """A loopback socket with a port but not listening yet: connections are refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


class LiveServer:
    def __init__(self, app: Any, sock: socket.socket | None = None, **config: Any) -> None:
        self.sock = sock or bound()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off",
                                                    **config))
        self.thread = threading.Thread(target=self.server.run,
                                       kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, \
                "uvicorn did not start"
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        assert not self.thread.is_alive()


@contextmanager
def serving(app: Any, **config: Any) -> Iterator[str]:
    """The app's base URL while it is served."""
    live = LiveServer(app, **config).start()
    try:
        yield live.url
    finally:
        live.stop()
        live.sock.close()
