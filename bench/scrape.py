"""The cost of a Prometheus scrape of ``allocsnap serve``, against exporting every call site.

A store of real dumps (bench/data/vm-7.3.4-idle-1s.txt.xz, an idle 7.3.4 guest, stamped 10 s
apart as the recorder would) is served by ``allocsnap serve``'s server on a free loopback port,
in this process, and scraped over HTTP:

- **cached**: the newest snapshot is unchanged since the last scrape (the common case when the
  recorder's interval is longer than the scrape interval): a lookup of the newest id, then the
  cached text;
- **new snapshot**: a new snapshot arrived since the last scrape: the exposition is computed
  (load it and the one before, the text), with the leaks of the boot judged again
  (``--leaks-every 0s``) or their verdicts reused (the default ``5m``);
- **--source**: a dump read and parsed on each scrape, as ``serve --source`` reads the kernel;
- **record --textfile**: what the recorder adds per snapshot: the exposition of the snapshot it
  holds in memory (growth since the one before) and the atomic write of the file.

CPU is this process's (server and client both: an upper bound), per scrape, median of the
runs. With a ``prometheus`` binary, a real Prometheus then scrapes both ``serve`` and the
every-call-site text (from a static file server) every second, and its own figures are read
back: scrape duration, samples per scrape, series stored, samples dropped (duplicates).
The alternative is the obvious script: ``awk`` turning every row of the dump into two
series (bytes and calls), as a textfile; its CPU is awk's own (children's rusage). Series are
counted from the text (lines with a value).

Usage: python -m bench.scrape [--snapshots 60] [--scrapes 30] [--prometheus-seconds 30]
"""

from __future__ import annotations

import argparse
import functools
import http.client
import http.server
import json
import lzma
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from allocsnap import openmetrics, recorder, serve  # noqa: E402
from allocsnap.kernel import capture, source  # noqa: E402
from allocsnap.model import Snapshot  # noqa: E402
from allocsnap.store import durable, writing  # noqa: E402
from bench.size import REAL_SERIES, START, split_dumps  # noqa: E402

AWK = r"""
NR > 2 && $3 ~ /:[0-9]+$/ {
    site = $3; for (i = 4; i <= NF; i++) site = site " " $i
    gsub(/\\/, "\\\\", site); gsub(/"/, "\\\"", site)
    printf "allocinfo_bytes{site=\"%s\"} %s\n", site, $1
    printf "allocinfo_calls{site=\"%s\"} %s\n", site, $2
}
"""


def series(text: str) -> int:
    """Return the lines of an exposition that carry a value."""
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def snapshot(text: bytes, k: int) -> Snapshot:
    raw = source.RawRead(
        text=text, source="file", taken_at=START + timedelta(seconds=10 * k), boot_id="b1"
    )
    return capture.snapshot(raw, host="vm")


def scrape(port: int) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", "/metrics", headers={"Accept": "application/openmetrics-text"})
        body = conn.getresponse().read()
    finally:
        conn.close()
    return body


def cpu_ms(action: object, runs: int) -> tuple[float, float]:
    """Return the median CPU and wall milliseconds of ``action()`` over ``runs``."""
    cpu, wall = [], []
    for _ in range(runs):
        c, w = time.process_time(), time.perf_counter()
        action()  # type: ignore[operator]
        cpu.append((time.process_time() - c) * 1000)
        wall.append((time.perf_counter() - w) * 1000)
    return statistics.median(cpu), statistics.median(wall)


def serve_case(
    root: Path, dumps: list[bytes], first: int, scrapes: int, leaks_every: float
) -> tuple[bytes, tuple[float, float], tuple[float, float]]:
    """Serve the store; return a scrape's text, and the CPU and wall ms of a scrape with the
    newest snapshot cached and of one after a new snapshot arrived (median of ``scrapes``)."""
    exporter = serve.StoreExporter(root, None, openmetrics.Limits(), 0, leaks_every)
    http = serve.server(serve.Listen("127.0.0.1", 0), exporter)
    port = http.server_address[1]
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        body = scrape(port)  # the first: computed
        cached = cpu_ms(lambda: scrape(port), scrapes)
        timed: list[tuple[float, float]] = []
        for k in range(first, first + scrapes):
            writing.write(root, snapshot(dumps[k], k))  # the recorder's work, not the scrape's
            timed.append(cpu_ms(lambda: scrape(port), 1))
        assert exporter.computed == 1 + scrapes, exporter.computed
    finally:
        http.shutdown()
        http.server_close()
        exporter.close()
    fresh = statistics.median(c for c, _ in timed), statistics.median(w for _, w in timed)
    return body, cached, fresh


def prometheus_side(root: Path, raw: str, work: Path, seconds: float) -> list[str] | None:
    """Return table rows of what a real Prometheus (scraping every second for ``seconds``)
    says of each target: scrape duration, samples per scrape, series stored, duplicate
    samples; None without a ``prometheus`` binary."""
    binary = shutil.which("prometheus")
    if binary is None:
        return None
    exporter = serve.StoreExporter(root, None, openmetrics.Limits(), 0, 300)
    exporter.get()  # computed before the first scrape, as serve does before it listens
    ours = serve.server(serve.Listen("127.0.0.1", 0), exporter)
    folder = work / "raw"
    folder.mkdir()
    (folder / "metrics").write_text(raw)
    handler = functools.partial(_Quiet, directory=str(folder))
    theirs = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    for server in (ours, theirs):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    targets = {"allocsnap": ours.server_address[1], "every_call_site": theirs.server_address[1]}
    config = work / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n"
        + "".join(
            f"  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
            for job, port in targets.items()
        )
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={work / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(seconds)

        def value(promql: str, job: str) -> float:
            url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode(
                {"query": promql.replace("JOB", job)}
            )
            with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
                result = json.loads(response.read())["data"]["result"]
            return float(result[0]["value"][1]) if result else float("nan")

        rows = []
        for job in targets:
            duration = value('quantile_over_time(0.5, scrape_duration_seconds{job="JOB"}[1m])', job)
            samples = value('scrape_samples_scraped{job="JOB"}', job)
            stored = value('count({job="JOB",__name__=~"allocsnap_.+|allocinfo_.+"})', job)
            scrapes = value('count_over_time(up{job="JOB"}[1m])', job)
            rows.append(
                f"| {job} | {duration * 1000:.1f} ms | {samples:.0f} | {stored:.0f} "
                f"| {samples - stored:.0f} | {scrapes:.0f} |"
            )
        return rows
    finally:
        proc.terminate()
        proc.wait()
        for server in (ours, theirs):
            server.shutdown()
            server.server_close()
        exporter.close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=60)
    parser.add_argument("--scrapes", type=int, default=30)
    parser.add_argument("--prometheus-seconds", type=float, default=30, help="0: no Prometheus run")
    args = parser.parse_args(argv)
    dumps = split_dumps(lzma.decompress(REAL_SERIES.read_bytes()))
    n = min(args.snapshots, len(dumps) - 2 * args.scrapes)
    with tempfile.TemporaryDirectory() as work:
        root = Path(work) / "store"
        for k in range(n):
            writing.write(root, snapshot(dumps[k], k))
        body, cached, judged = serve_case(root, dumps, n, args.scrapes, leaks_every=0)
        _body, _cached, reused = serve_case(
            root, dumps, n + args.scrapes, args.scrapes, leaks_every=300
        )

        dump = Path(work) / "dump.txt"
        dump.write_bytes(dumps[-1])
        source_exporter = serve.SourceExporter(
            str(dump), None, openmetrics.Limits(), min_interval=0
        )
        from_source = cpu_ms(source_exporter.get, args.scrapes)
        source_text = source_exporter.get().text

        # record --textfile: the exposition of a snapshot in memory, and its atomic write
        textfile = Path(work) / "allocsnap.prom"
        pair = [snapshot(dumps[-2], 0), snapshot(dumps[-1], 1)]

        def write_textfile() -> None:
            exp = openmetrics.exposition(pair[1], pair[0], openmetrics=False)
            durable.publish(exp.text.encode(), textfile, recorder.TEXTFILE_MODE)

        textfile_cost = cpu_ms(write_textfile, args.scrapes)
        textfile_text = textfile.read_text()

        def run_awk() -> str:
            return subprocess.run(
                ["awk", AWK, str(dump)], capture_output=True, text=True, check=True
            ).stdout

        raw = run_awk()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        for _ in range(args.scrapes):
            run_awk()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        awk_cpu = (
            (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            * 1000
            / args.scrapes
        )
        awk_wall = (time.perf_counter() - started) * 1000 / args.scrapes
        side = (
            prometheus_side(root, raw, Path(work), args.prometheus_seconds)
            if args.prometheus_seconds > 0
            else None
        )
        text = body.decode()
        rows = sum(1 for line in dumps[-1].decode().splitlines() if line[:1] != "#") - 1

    print(f"machine: {os.cpu_count()} cores, load {' '.join(map(str, os.getloadavg()))}")
    print(f"store: {n} real snapshots (7.3.4 idle guest, {rows:,} rows each), 10 s apart")
    print(f"scrapes: {args.scrapes} per case, medians")
    print()
    print("| what | series | text | CPU per scrape | wall per scrape |")
    print("| --- | --- | --- | --- | --- |")
    print(
        f"| serve, newest snapshot cached | {series(text)} | {len(body) / 1024:.1f} KiB "
        f"| {cached[0]:.1f} ms | {cached[1]:.1f} ms |"
    )
    print(
        f"| serve, a new snapshot since the last scrape, leaks judged again | {series(text)} "
        f"| {len(body) / 1024:.1f} KiB | {judged[0]:.0f} ms | {judged[1]:.0f} ms |"
    )
    print(
        f"| serve, a new snapshot, leak verdicts reused (--leaks-every 5m) | {series(text)} "
        f"| {len(body) / 1024:.1f} KiB | {reused[0]:.0f} ms | {reused[1]:.0f} ms |"
    )
    print(
        f"| serve --source (read, parse, expose) | {series(source_text)} "
        f"| {len(source_text) / 1024:.1f} KiB | {from_source[0]:.1f} ms "
        f"| {from_source[1]:.1f} ms |"
    )
    print(
        f"| record --textfile (expose a snapshot in memory, write atomically) "
        f"| {series(textfile_text)} | {len(textfile_text) / 1024:.1f} KiB "
        f"| {textfile_cost[0]:.1f} ms | {textfile_cost[1]:.1f} ms |"
    )
    print(
        f"| alternative: awk, every row as 2 series | {series(raw)} | {len(raw) / 1024:.1f} KiB "
        f"| {awk_cpu:.1f} ms | {awk_wall:.1f} ms |"
    )
    print()
    print(f"series ratio (serve / every call site): {series(text) / series(raw):.3f}")
    if side is not None:
        print()
        print(f"a real Prometheus scraping both every second for {args.prometheus_seconds:.0f} s:")
        print()
        print(
            "| target | scrape duration (median) | samples per scrape | series stored "
            "| dropped | scrapes |"
        )
        print("| --- | --- | --- | --- | --- | --- |")
        print("\n".join(side))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
