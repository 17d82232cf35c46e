"""A fake email/SMS provider on 127.0.0.1, so that the real anymail backends and the real
twilio client are exercised over HTTP without the internet.

It answers like Postmark (POST /email, /email/batch) and Twilio (POST
/2010-04-01/Accounts/<sid>/Messages.json), records every request, and can be told to answer
with an error status, slowly, or to drop the connection after reading the request.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode())


@dataclass
class Behaviour:
    """What the next requests get. `script` is consumed first, one entry per request:
    an int status, "drop" (close without answering), "ok", or {"status": int, "json": {...}}
    to answer with exactly that (e.g. Twilio's error code for a carrier STOP, or Postmark's
    ErrorCode 300)."""

    script: list[int | str | dict[str, Any]] = field(default_factory=list)
    delay_seconds: float = 0.0


class FakeProvider:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.behaviour = Behaviour()
        self._lock = threading.Lock()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            # Keep-alive, as real providers allow: a client's session reuses one connection
            # instead of a TCP handshake and a server thread per request. Every answer has
            # a Content-Length; "drop" still closes the connection. No Nagle: headers and
            # body go out in two writes, which would otherwise wait for a delayed ACK.
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with provider._lock:
                    step = provider.behaviour.script.pop(0) if provider.behaviour.script else "ok"
                    delay = provider.behaviour.delay_seconds
                if delay:
                    time.sleep(delay)
                if step == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return
                with provider._lock:
                    provider.requests.append(
                        Recorded("POST", self.path, dict(self.headers.items()), body)
                    )
                if isinstance(step, dict):
                    self._send_json(int(step["status"]), step["json"])
                    return
                status = step if isinstance(step, int) else 200
                if self.path.startswith("/2010-04-01/"):
                    self._twilio(status, body)
                else:
                    self._postmark(status, body)

            def _send_json(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _twilio(self, status: int, body: bytes) -> None:
                if status >= 400:
                    self._send_json(
                        status, {"code": 20500 if status >= 500 else 20429, "message": "fake"}
                    )
                    return
                form = parse_qs(body.decode())
                self._send_json(
                    201,
                    {
                        "sid": f"SM{uuid.uuid4().hex}",
                        "status": "queued",
                        "to": form.get("To", [""])[0],
                        "body": form.get("Body", [""])[0],
                    },
                )

            def _postmark(self, status: int, body: bytes) -> None:
                if status >= 400:
                    self._send_json(status, {"ErrorCode": 100, "Message": "fake failure"})
                    return
                payload = json.loads(body or b"{}")
                messages = payload if isinstance(payload, list) else [payload]
                answers = [
                    {
                        "MessageID": str(uuid.uuid4()),
                        "ErrorCode": 0,
                        "Message": "OK",
                        "To": message.get("To", ""),
                        "SubmittedAt": "2026-11-22T10:00:00Z",
                    }
                    for message in messages
                ]
                self._send_json(200, answers if isinstance(payload, list) else answers[0])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeProvider:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
