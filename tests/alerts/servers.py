"""Real loopback servers for notification tests: SMTP (aiosmtpd) and HTTP."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mailbox:
    messages: list[Message] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.original_content, policy=policy.default))
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted"


@contextmanager
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    from aiosmtpd.controller import Controller

    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@dataclass
class Recorder:
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_next: int = 0


@contextmanager
def http_server() -> Iterator[tuple[Recorder, str]]:
    rec = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if rec.fail_next > 0:
                rec.fail_next -= 1
                self.send_response(500)
                self.end_headers()
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            rec.requests.append({"path": self.path, "headers": headers, "body": body})
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def s3_server(monkeypatch: Any, *buckets: str) -> Iterator[Any]:
    """moto's S3 server over HTTP on loopback; the environment points auditlens at it.

    Yields a boto3 client for checking what arrived.
    """
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        for var, value in {
            "AUDITLENS_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AUDITLENS_S3_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
        }.items():
            monkeypatch.setenv(var, value)
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1")
        for bucket in buckets:
            s3.create_bucket(Bucket=bucket)
        yield s3
        s3.close()
    finally:
        server.stop()


@contextmanager
def smtp_env(monkeypatch: Any) -> Iterator[Mailbox]:
    """An SMTP server on loopback with the environment pointing auditlens at it."""
    with smtp_server() as (box, port):
        monkeypatch.setenv("AUDITLENS_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("AUDITLENS_SMTP_PORT", str(port))
        yield box
