"""A real HTTP(S) callback receiver on 127.0.0.1, answering from a script, recording requests."""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"ok"
    delay: float = 0.0
    location: str | None = None


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """Answers each POST with the next scripted ``Reply`` (then 200), and keeps what came in."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.received: list[Received] = []
        self.server_names: list[str | None] = []
        self._script: deque[Reply] = deque()
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        if tls is not None:
            tls.sni_callback = self._note_server_name
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def url(self, host: str = "127.0.0.1", path: str = "/hook") -> str:
        scheme = "https" if isinstance(self._server.socket, ssl.SSLSocket) else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def script(self, *replies: Reply | int) -> None:
        for reply in replies:
            self._script.append(reply if isinstance(reply, Reply) else Reply(status=reply))

    def next_reply(self) -> Reply:
        return self._script.popleft() if self._script else Reply()

    def _note_server_name(self, _sock: ssl.SSLObject, name: str | None, _ctx: object) -> None:
        self.server_names.append(name)

    @contextlib.contextmanager
    def running(self) -> Iterator[Receiver]:
        self._thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that gave up (the timeout test) leaves a broken pipe behind: expected.
        return


def _handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            receiver.received.append(Received(path=self.path, headers=headers, body=body))
            reply = receiver.next_reply()
            if reply.delay:
                time.sleep(reply.delay)
            self.send_response(reply.status)
            self.send_header("Content-Length", str(len(reply.body)))
            if reply.location is not None:
                self.send_header("Location", reply.location)
            self.end_headers()
            self.wfile.write(reply.body)

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler
