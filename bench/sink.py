"""An OTLP/HTTP receiver that accepts everything and keeps nothing but counts.

It stands in for a collector, so that a service's exporter does all its work
(encode, compress, send) without a real backend's cost muddying the figures.
"""

from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class DiscardingReceiver:
    """Answers ``POST /v1/traces`` and ``/v1/logs`` with 200 on a free local port."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.bytes: Counter[str] = Counter()
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep the exporters' connections open

            def do_POST(self) -> None:  # the name http.server calls
                size = int(self.headers.get("content-length", 0))
                self.rfile.read(size)
                with lock:
                    receiver.requests[self.path] += 1
                    receiver.bytes[self.path] += size
                # An empty Export*ServiceResponse encodes to zero bytes: full success.
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def snapshot(self) -> dict[str, int]:
        """Export requests and bytes received so far, by signal."""
        return {
            "trace_exports": self.requests["/v1/traces"],
            "trace_bytes": self.bytes["/v1/traces"],
            "log_exports": self.requests["/v1/logs"],
            "log_bytes": self.bytes["/v1/logs"],
        }

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
