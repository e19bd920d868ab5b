"""The /metrics server (allocsnap/serve.py): loopback unless told, one path, bounded requests,
and one computation per snapshot however often it is scraped."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from allocsnap import openmetrics, serve
from allocsnap.errors import UsageError
from allocsnap.store import writing
from tests import oracle
from tests.conftest import real
from tests.test_analysis import snap
from tests.test_openmetrics import parse

T0 = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
LIMITS = openmetrics.Limits()


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("127.0.0.1:9476", "127.0.0.1", 9476),
        ("[::1]:0", "::1", 0),
        (":9476", "127.0.0.1", 9476),
        ("localhost:8080", "127.0.0.1", 8080),
        ("127.0.0.2:1", "127.0.0.2", 1),
    ],
)
def test_loopback_addresses_are_accepted(text: str, host: str, port: int) -> None:
    assert serve.parse_listen(text) == serve.Listen(host, port)


@pytest.mark.parametrize("text", ["0.0.0.0:9476", "[::]:9476", "10.1.2.3:80", "[2001:db8::1]:1"])
def test_other_addresses_need_allow_remote(text: str) -> None:
    # GIVEN an address that is not loopback / THEN it is refused, unless explicitly allowed
    with pytest.raises(UsageError, match="is not a loopback address.*--allow-remote"):
        serve.parse_listen(text)
    assert serve.parse_listen(text, allow_remote=True).port in (9476, 80, 1)


@pytest.mark.parametrize("text", ["9476", "127.0.0.1", "127.0.0.1:http", "1.2.3.4:70000", "db:1"])
def test_malformed_listen_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError):
        serve.parse_listen(text, allow_remote=True)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    for i in range(2):
        capture = real("6.12", 1, i)
        at = T0 + timedelta(minutes=10 * i)
        writing.write(root, snap(capture, at=at, with_meta=True, host="vm-a"))
    return root


class Running:
    """A /metrics server on a free loopback port, serving from a thread."""

    def __init__(self, exporter: serve.Exporter) -> None:
        self.exporter = exporter
        self.http = serve.server(serve.Listen("127.0.0.1", 0), exporter)
        self.port = self.http.server_address[1]
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def running(store: Path) -> Iterator[Running]:
    server = Running(serve.StoreExporter(store, None, LIMITS, min_interval=0))
    yield server
    server.close()


@pytest.mark.slow
def test_one_computation_per_snapshot_however_often_scraped(running: Running, store: Path) -> None:
    # GIVEN a server over a store of two snapshots
    # WHEN it is scraped three times
    bodies = {running.request("GET", "/metrics")[2] for _ in range(3)}

    # THEN the exposition was computed once, and is the newest snapshot's
    assert running.exporter.computed == 1
    (body,) = bodies
    total = sum(r.bytes for r in oracle.rows(real("6.12", 1, 1)))
    assert list(parse(body.decode())["allocsnap_live_bytes"].values()) == [total]

    # WHEN a newer snapshot arrives in the store
    later = snap(real("6.12", 1, 2), at=T0 + timedelta(minutes=20), with_meta=True, host="vm-a")
    writing.write(store, later)
    body = running.request("GET", "/metrics")[2]

    # THEN the next scrape computes it, once
    assert running.exporter.computed == 2
    total = sum(r.bytes for r in oracle.rows(real("6.12", 1, 2)))
    assert list(parse(body.decode())["allocsnap_live_bytes"].values()) == [total]


@pytest.mark.slow
def test_only_get_and_head_of_metrics_are_answered(running: Running) -> None:
    # GIVEN the server / WHEN other paths and methods are asked for / THEN they are refused
    assert running.request("GET", "/")[0] == 404
    assert running.request("GET", "/metrics/../etc/passwd")[0] == 404
    assert running.request("GET", "/favicon.ico")[0] == 404
    assert running.request("POST", "/metrics")[0] == 501
    assert running.request("DELETE", "/metrics")[0] == 501
    status, headers, body = running.request("HEAD", "/metrics")
    assert (status, body) == (200, b"")
    assert int(headers["Content-Length"]) > 1000
    # a query string does not change the path
    assert running.request("GET", "/metrics?x=1")[0] == 200


@pytest.mark.slow
def test_formats_follow_the_accept_header(running: Running) -> None:
    # GIVEN a scraper asking for OpenMetrics, and one asking for nothing in particular
    om = running.request("GET", "/metrics", {"Accept": "application/openmetrics-text"})
    text = running.request("GET", "/metrics")

    # THEN each gets its format, the same lines apart from the end marker
    assert om[1]["Content-Type"] == openmetrics.OPENMETRICS_TYPE
    assert text[1]["Content-Type"] == openmetrics.PROMETHEUS_TYPE
    assert om[2] == text[2] + b"# EOF\n"


@pytest.mark.slow
def test_an_oversized_request_line_is_refused(running: Running) -> None:
    # GIVEN a request line past the standard library's 64 KiB bound
    status = running.request("GET", "/metrics?" + "x" * 70_000)[0]
    # THEN it is refused, and the server goes on answering
    assert status == 414
    assert running.request("GET", "/metrics")[0] == 200


@pytest.mark.slow
def test_a_store_that_cannot_be_read_answers_500(tmp_path: Path) -> None:
    # GIVEN a server over a store that does not exist (yet)
    server = Running(serve.StoreExporter(tmp_path / "none", None, LIMITS, min_interval=0))
    try:
        status, _headers, body = server.request("GET", "/metrics")
    finally:
        server.close()
    # THEN the scrape fails with the one-line reason
    assert status == 500
    assert body.decode().startswith("allocsnap: ")


@pytest.mark.slow
def test_the_kernel_is_read_at_most_once_per_min_interval(tmp_path: Path) -> None:
    # GIVEN a server reading a source (a saved dump stands for the kernel) with a long interval
    exporter = serve.SourceExporter(str(real("7.3", 2, 1)), None, LIMITS, min_interval=3600)
    server = Running(exporter)
    try:
        for _ in range(4):
            assert server.request("GET", "/metrics")[0] == 200
    finally:
        server.close()
    # THEN it was read once
    assert exporter.computed == 1


@pytest.mark.slow
@pytest.mark.parametrize(("leaks_every", "judged"), [(3600.0, 1), (0.0, 2)])
def test_leak_verdicts_are_reused_within_leaks_every(
    store: Path, leaks_every: float, judged: int
) -> None:
    # GIVEN a server that judges leaks at most once an hour (or every snapshot)
    exporter = serve.StoreExporter(store, None, LIMITS, min_interval=0, leaks_every=leaks_every)
    times = set()
    exporter.get()
    assert exporter.leaks is not None
    times.add(exporter.leaks[2])

    # WHEN a new snapshot of the same boot arrives
    later = snap(real("6.12", 1, 2), at=T0 + timedelta(minutes=20), with_meta=True, host="vm-a")
    writing.write(store, later)
    text = exporter.get().text
    times.add(exporter.leaks[2])

    # THEN the exposition is the new snapshot's, with verdicts judged once (or again)
    assert exporter.computed == 2
    assert len(times) == judged
    assert "allocsnap_leaks 0" in text
