"""The callback receiver of a soak run: a real HTTP server on 127.0.0.1 in a thread.

It checks every delivery's Standard Webhooks signature against the agent's secret, keeps
every attempt, and refuses the first attempt of about one message in ten (503), so that the
service's retries carry the same ``webhook-id`` again.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import threading
import zlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REFUSE_ONE_IN = 10


@dataclass(frozen=True)
class Delivery:
    agent: str
    webhook_id: str
    message: dict[str, Any]
    signed: bool
    answered: int


class Receiver:
    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.deliveries: list[Delivery] = []
        self._attempts: defaultdict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self.port = int(self._server.server_address[1])

    def url(self, agent: str) -> str:
        return f"http://127.0.0.1:{self.port}/hook/{agent}"

    @contextlib.contextmanager
    def running(self) -> Iterator[Receiver]:
        thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(timeout=5)

    def receive(self, agent: str, headers: dict[str, str], body: bytes) -> int:
        webhook_id = headers.get("webhook-id", "")
        signed = _signature_ok(self.secrets.get(agent), headers, body)
        try:
            message = json.loads(body)
        except ValueError:
            message = {}
        with self._lock:
            self._attempts[webhook_id] += 1
            first = self._attempts[webhook_id] == 1
            refuse = first and zlib.crc32(webhook_id.encode()) % REFUSE_ONE_IN == 0
            answered = 503 if refuse else 200
            self.deliveries.append(Delivery(agent, webhook_id, message, signed, answered))
        return answered

    def snapshot(self) -> list[Delivery]:
        with self._lock:
            return list(self.deliveries)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # A sender killed (SIGKILL) or timed out before reading the answer leaves a broken
        # pipe: the delivery is recorded, and the service will send it again.
        return


def _signature_ok(secret: str | None, headers: dict[str, str], body: bytes) -> bool:
    if secret is None:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers.get('webhook-id')}.{headers.get('webhook-timestamp')}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    given = headers.get("webhook-signature", "").split()
    return any(hmac.compare_digest(expected, signature) for signature in given)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if len(body) < length:
                return  # the sender died mid-request: nothing was delivered
            headers = {key.lower(): value for key, value in self.headers.items()}
            status = receiver.receive(self.path.rsplit("/", 1)[-1], headers, body)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler
