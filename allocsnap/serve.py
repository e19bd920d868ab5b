"""``allocsnap serve``: ``/metrics`` over HTTP for Prometheus, from a store or from the kernel.

The standard library's ``ThreadingHTTPServer`` (no new dependency). Each scrape costs little
and at most so much: the exposition is cached per snapshot (a store is listed, and asked for
its newest snapshot only when its snapshots files changed, not more often than
``min_interval``; the kernel is read at most once per ``min_interval``; leak verdicts are
reused for ``leaks_every``), one computation runs at a time, only ``GET``/``HEAD /metrics`` is
answered (404 for any other path), connections are capped and each gets a socket timeout, and
requests are bounded by the standard library's limits (a 64 KiB request line, 100 headers).
It listens on a loopback address unless told otherwise (``allow_remote``).
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO
from urllib.parse import urlsplit

from allocsnap import openmetrics, recorder
from allocsnap.analysis import metrics
from allocsnap.analysis.compare import Hosts
from allocsnap.analysis.session import Session
from allocsnap.errors import AllocsnapError, UsageError
from allocsnap.kernel import capture
from allocsnap.model import Snapshot
from allocsnap.store import layout
from allocsnap.store.remote import Location

DEFAULT_PORT = 9476
MAX_CONNECTIONS = 8  # scrapes served at once; more are closed at once (Prometheus retries)
SOCKET_TIMEOUT_S = 10.0  # a client that sends nothing holds a thread this long at most


@dataclass(frozen=True)
class Listen:
    """Where to listen: an address and a port (0: any free port)."""

    host: str
    port: int

    @property
    def family(self) -> socket.AddressFamily:
        return socket.AF_INET6 if ":" in self.host else socket.AF_INET

    def url(self, port: int | None = None) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port if port is None else port}/metrics"


def parse_listen(text: str, *, allow_remote: bool = False) -> Listen:
    """Return the address ``--listen`` names (``127.0.0.1:9476``, ``[::1]:9476``, ``:9476``
    for loopback); refuse one that is not loopback unless ``allow_remote``."""
    host, colon, port = text.rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--listen {text!r}: give ADDRESS:PORT, e.g. 127.0.0.1:{DEFAULT_PORT}")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    host = host or "127.0.0.1"
    if host == "localhost":
        host = "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise UsageError(
            f"--listen {text!r}: give an IP address (127.0.0.1, ::1, 0.0.0.0), not a name"
        ) from None
    if not address.is_loopback and not allow_remote:
        raise UsageError(
            f"--listen {text!r} is not a loopback address: anyone who can reach it reads the "
            "kernel's allocation profile; give --allow-remote to mean it"
        )
    return Listen(str(address), int(port))


class Exporter:
    """The exposition of the newest snapshot, recomputed only when it changes."""

    def __init__(self, min_interval: float) -> None:
        self.min_interval = min_interval
        self.lock = threading.Lock()
        self.checked = -float("inf")  # monotonic time of the last look at the source
        self.cached: openmetrics.Exposition | None = None
        self.computed = 0  # expositions computed (not served from the cache)

    def get(self) -> openmetrics.Exposition:
        """Return the exposition as OpenMetrics text, from the cache when it is current."""
        with self.lock:  # one computation at a time; the others wait and get its result
            now = time.monotonic()
            if self.cached is None or now - self.checked >= self.min_interval:
                self.cached = self.refresh(self.cached)
                self.checked = time.monotonic()
            return self.cached

    def refresh(self, cached: openmetrics.Exposition | None) -> openmetrics.Exposition:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the exporter holds open."""


class StoreExporter(Exporter):
    """A store's newest snapshot (of a host), with its growth and leak verdicts."""

    def __init__(
        self,
        store: Location,
        host: Hosts,
        limits: openmetrics.Limits,
        min_interval: float,
        leaks_every: float = 0.0,
    ) -> None:
        super().__init__(min_interval)
        self.store, self.host, self.limits = store, host, limits
        self.leaks_every = leaks_every  # seconds a boot's leak verdicts are reused for
        self.leaks: tuple[str, str | None, float, openmetrics.Leaks | None] | None = None
        self.listing: object = None  # the snapshots files as last seen: names, sizes, times
        self.snapshot: tuple[str, str] | None = None  # host and id of the cached one
        self.last: Snapshot | None = None  # the snapshot read last time
        self.session: Session | None = None  # kept open: its macros are made once

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None

    def refresh(self, cached: openmetrics.Exposition | None) -> openmetrics.Exposition:
        # a listing of the store costs far less than asking DuckDB for the newest snapshot:
        # while the snapshots files are the same, so is the newest snapshot
        files = layout.open_store(self.store)
        infos = [files.listed.get(p) for p in files.snapshots]
        listing = [
            (p, getattr(i, "size", None), getattr(i, "mtime_ns", None))
            for p, i in zip(files.snapshots, infos, strict=True)
        ]
        if cached is not None and listing == self.listing:
            return cached
        found = self._gather()
        meta = found.snapshot.meta
        if cached is None or (meta.host, meta.snapshot_id) != self.snapshot:
            cached = openmetrics.exposition(
                found.snapshot, found.previous, found.leaks, self.limits
            )
            self.snapshot = (meta.host, meta.snapshot_id)
            self.computed += 1
        self.last = found.snapshot
        self.listing = listing  # only once answered: a failure is tried again next time
        return cached

    def _gather(self) -> metrics.Gathered:
        """Return the newest snapshot, the one before and the leak verdicts, reusing the costly
        parts: the snapshot read last time when it is the one before, and the verdicts judged
        within ``leaks_every`` for the same boot."""
        if self.session is None:
            self.session = Session(self.store)
        else:
            self.session.refresh()
        try:
            found = metrics.gather(self.session, host=self.host, known=self.last, judge=False)
            meta = found.snapshot.meta
            held = self.leaks
            if (
                held is None
                or held[:2] != (meta.host, meta.boot_id)
                or time.monotonic() - held[2] >= self.leaks_every
            ):
                verdicts = metrics.leak_verdicts(self.session, meta)
                held = (meta.host, meta.boot_id, time.monotonic(), verdicts)
                self.leaks = held
        except AllocsnapError:
            self.close()  # opened afresh next time
            raise
        return replace(found, leaks=held[3])


class SourceExporter(Exporter):
    """A read of the kernel (or a dump) per scrape, growth since the read before."""

    def __init__(
        self, spec: str, host: str | None, limits: openmetrics.Limits, min_interval: float
    ) -> None:
        super().__init__(min_interval)
        self.spec, self.host, self.limits = spec, host, limits
        self.previous: Snapshot | None = None

    def refresh(self, cached: openmetrics.Exposition | None) -> openmetrics.Exposition:
        snap = capture.snapshot(capture.read(self.spec), host=self.host)
        exposition = openmetrics.exposition(snap, self.previous, limits=self.limits)
        self.previous = snap
        self.computed += 1
        return exposition


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, listen: Listen, exporter: Exporter, log: TextIO) -> None:
        self.address_family = listen.family
        self.exporter = exporter
        self.log = log
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__((listen.host, listen.port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)  # too many at once: closed, not queued
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A scraper that hung up (its timeout passed) is no error; a bug keeps its traceback."""
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "allocsnap"
    timeout = SOCKET_TIMEOUT_S

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self._reply(body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._reply(body=False)

    def _reply(self, *, body: bool) -> None:
        if urlsplit(self.path).path != "/metrics":
            self.send_error(404, "only /metrics is served here")
            return
        try:
            exposition = self.server.exporter.get()
        except AllocsnapError as e:
            print(f"allocsnap serve: {e}", file=self.server.log, flush=True)
            self._send(500, f"allocsnap: {e}\n".encode(), "text/plain; charset=utf-8", body)
            return
        if "application/openmetrics-text" not in self.headers.get("Accept", ""):
            exposition = exposition.prometheus()
        self._send(200, exposition.text.encode(), exposition.content_type, body)

    def _send(self, code: int, data: bytes, kind: str, body: bool) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """No line per scrape: errors are said where they happen."""


def server(listen: Listen, exporter: Exporter, log: TextIO = sys.stderr) -> ThreadingHTTPServer:
    """Return the HTTP server of ``/metrics``, bound and listening (not yet serving)."""
    try:
        return _Server(listen, exporter, log)
    except OSError as e:
        raise UsageError(f"cannot listen on {listen.url()}: {e.strerror or e}") from e


def serve(
    listen: Listen,
    exporter: Exporter,
    *,
    on_ready: Callable[[str], None] | None = None,
    on_problem: Callable[[str], None] | None = None,
    log: TextIO = sys.stderr,
) -> None:
    """Serve ``/metrics`` until SIGINT or SIGTERM; ``on_ready`` gets the URL once listening
    (with the port chosen when ``listen`` asked for port 0).

    The exposition is computed once first: a bad limit raises ``UsageError``; a source that
    cannot be read yet (a store the recorder has not written) goes to ``on_problem`` and is
    served as 500 until it can be.
    """
    try:
        exporter.get()
    except UsageError:
        raise
    except AllocsnapError as e:
        if on_problem is not None:
            on_problem(str(e))

    def stop() -> None:  # shutdown() waits for serve_forever: not from the handler's thread
        threading.Thread(target=http.shutdown, daemon=True).start()

    try:
        with server(listen, exporter, log) as http, recorder.on_signals(stop):
            if on_ready is not None:
                on_ready(listen.url(http.server_address[1]))
            http.serve_forever()
    finally:
        exporter.close()
