"""allocsnap inside a real monitoring stack: a Prometheus server (the Debian package) scrapes
``allocsnap serve`` over a store of real captures, and its HTTP query API gives back what
tests/oracle.py and ``allocsnap show`` compute from the same capture; ``promtool`` accepts every
exposition; a real node_exporter reads what ``record --textfile`` wrote.

The binaries come from ``apt-get install prometheus prometheus-node-exporter`` (.ci/run). A
test that needs one skips, saying so, when it is missing, and fails instead under ``CI=true``,
as the VM tests do (docs/testing.md).
"""

from __future__ import annotations

import json
import shutil
import socket
import stat
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from allocsnap import openmetrics, recorder
from allocsnap.analysis import metrics
from allocsnap.cli import app
from allocsnap.store import writing
from tests import oracle
from tests.conftest import real
from tests.test_analysis import snap
from tests.test_openmetrics import parse
from tests.vm.test_real_kernels import in_ci

T0 = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
CAPTURES = [real("6.12", 1, i) for i in range(5)]  # one boot; modules come and go at 3 and 4
NEWEST, BEFORE = CAPTURES[4], CAPTURES[3]
runner = CliRunner()


def binary(name: str) -> str:
    """Return the path of a monitoring binary; skip without it (fail under CI=true)."""
    found = shutil.which(name)
    if found is None:
        reason = f"{name} is not installed (apt-get install prometheus prometheus-node-exporter)"
        if in_ci():
            pytest.fail(f"CI=true but {reason}", pytrace=False)
        pytest.skip(reason)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def get(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (our own URL)
        text: str = response.read().decode()
        return text


def wait_for(what: str, check: Any, timeout: float = 60.0) -> Any:
    """Return ``check()`` once it is truthy (errors count as not yet); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except OSError as e:
            result, last = None, e
        if result:
            return result
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what} (last: {last})")


def started(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    """Start a server process with its output in ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of one real boot, five snapshots ten minutes apart, with its meta.json facts."""
    root = tmp_path_factory.mktemp("prometheus") / "store"
    for i, path in enumerate(CAPTURES):
        writing.write(
            root, snap(path, at=T0 + timedelta(minutes=10 * i), with_meta=True, host="vm-a")
        )
    return root


@pytest.fixture(scope="module")
def served(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Run ``allocsnap serve`` on the store (a free port); yield its host:port."""
    binary("prometheus")  # nothing to serve to without it
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    argv = [sys.executable, "-m", "allocsnap", "serve", "--store", str(store), "--listen"]
    proc = started([*argv, "127.0.0.1:0"], log)
    try:
        line = wait_for(
            "allocsnap serve", lambda: "serving " in log.read_text() and log.read_text()
        )
        url = line.split("serving ", 1)[1].split()[0]
        yield urllib.parse.urlsplit(url).netloc
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def prometheus(served: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Run a real Prometheus on 127.0.0.1 (a free port) scraping ``served`` every second;
    yield its base URL once the first scrape of allocsnap is in."""
    folder = tmp_path_factory.mktemp("prometheus-server")
    config = folder / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: allocsnap\n"
        f"    static_configs:\n      - targets: ['{served}']\n"
    )
    check = subprocess.run(
        [binary("promtool"), "check", "config", str(config)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    port = free_port()
    proc = started(
        [
            binary("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        folder / "prometheus.log",
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for("Prometheus' first scrape", lambda: query(base, "allocsnap_live_bytes"))
        yield base
    finally:
        stop(proc)


def query(base: str, promql: str) -> list[dict[str, Any]]:
    """Return the instant vector of a PromQL query through Prometheus' HTTP API."""
    answer = json.loads(get(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})))
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def by_label(base: str, metric: str, label: str) -> dict[str, float]:
    return {r["metric"][label]: float(r["value"][1]) for r in query(base, metric)}


@pytest.mark.slow
def test_prometheus_reads_back_what_the_capture_holds(prometheus: str, store: Path) -> None:
    # GIVEN Prometheus scraping allocsnap serve over the store (its newest snapshot: capture 4)
    rows, before = oracle.rows(NEWEST), oracle.rows(BEFORE)
    sites = oracle.sums(rows)
    total = sum(r.bytes for r in rows)

    # WHEN the values are read back through its query API
    named = by_label(prometheus, "allocsnap_call_site_live_bytes", "call_site")

    # THEN each call site is the capture's sum, and with (other) they make the total
    assert len(named) > 20
    for site, value in named.items():
        if site != openmetrics.OTHER:
            assert value == sites[site][0], site
    assert sum(named.values()) == total
    assert by_label(prometheus, "allocsnap_live_bytes", "__name__") == {
        "allocsnap_live_bytes": total
    }
    # and allocsnap show of the same snapshot agrees, site by site
    shown = runner.invoke(app, ["show", "latest", "-f", "json", "-n", "0", "--store", str(store)])
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.stdout)
    show_bytes = {row["key"]: row["bytes"] for row in report["rows"]}
    assert all(named[k] == show_bytes[k] for k in named if k != openmetrics.OTHER)
    assert report["totals"]["bytes"] == total
    # growth since capture 3, the snapshot before it in the same boot
    growth = by_label(prometheus, "allocsnap_call_site_growth_bytes", "call_site")
    delta = {c.key: c.delta_bytes for c in oracle.diff(before, rows)}
    assert all(growth[k] == delta.get(k, 0) for k in growth if k != openmetrics.OTHER)
    assert sum(growth.values()) == total - sum(r.bytes for r in before)
    # every module and top directory
    modules = by_label(prometheus, "allocsnap_module_live_bytes", "module")
    assert modules == {k: b for k, (b, _c) in oracle.sums(rows, "module").items()}
    directories = by_label(prometheus, "allocsnap_directory_live_bytes", "directory")
    assert directories == {k: b for k, (b, _c) in oracle.sums(rows, "dir", 1).items()}
    # allocations are signed calls summed
    allocations = by_label(prometheus, "allocsnap_call_site_live_allocations", "call_site")
    assert sum(allocations.values()) == sum(r.signed_calls for r in rows)
    # which snapshot: host and boot from meta.json
    (info,) = query(prometheus, "allocsnap_snapshot_info")
    boot = json.loads((NEWEST.parent / "meta.json").read_text())["boot_id"]
    assert (info["metric"]["host"], info["metric"]["boot_id"]) == ("vm-a", boot)
    stamp = by_label(prometheus, "allocsnap_snapshot_timestamp_seconds", "__name__")
    assert list(stamp.values()) == [(T0 + timedelta(minutes=40)).timestamp()]


@pytest.mark.slow
def test_prometheus_gets_the_leak_verdicts_of_the_boot(prometheus: str, store: Path) -> None:
    # GIVEN the verdicts of the leaks analysis for the store (five points: none a leak yet)
    from allocsnap import analysis

    result = analysis.leaks(store, analysis.Window(host="vm-a"), top_n=None)
    judged = [r for r in result.others.to_pylist() if r["bytes_per_hour"] is not None]
    last = max(r["last_at"] for r in judged)
    current = {r["key"]: r["bytes_per_hour"] for r in judged if r["last_at"] == last}

    # WHEN Prometheus reads the leak families
    rates = by_label(prometheus, "allocsnap_leak_rate_bytes_per_hour", "call_site")
    detected = by_label(prometheus, "allocsnap_leak_detected", "call_site")

    # THEN the steepest --top of them are there with their slopes, and none is called a leak
    steepest = sorted(current, key=lambda k: -current[k])[: openmetrics.DEFAULT_TOP]
    assert set(rates) == set(steepest)
    assert all(rates[k] == pytest.approx(current[k]) for k in rates)
    assert set(detected.values()) == {0.0}
    assert by_label(prometheus, "allocsnap_leaks", "__name__") == {"allocsnap_leaks": 0.0}


@pytest.mark.slow
def test_the_scrape_was_openmetrics_and_healthy(prometheus: str, served: str) -> None:
    # GIVEN the scrape target's state in Prometheus
    answer = json.loads(get(f"{prometheus}/api/v1/targets"))
    (target,) = answer["data"]["activeTargets"]

    # THEN it is up with no error
    assert (target["health"], target["lastError"]) == ("up", "")
    # and serve answers OpenMetrics to Prometheus' Accept header, text 0.0.4 otherwise
    request = urllib.request.Request(
        f"http://{served}/metrics",
        headers={"Accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        assert response.headers["Content-Type"] == openmetrics.OPENMETRICS_TYPE
        assert response.read().decode().endswith("# EOF\n")
    assert not get(f"http://{served}/metrics").endswith("# EOF\n")


@pytest.mark.parametrize("fmt", ["openmetrics", "prometheus"])
def test_promtool_accepts_every_exposition(store: Path, tmp_path: Path, fmt: str) -> None:
    # GIVEN the store's exposition, and one of a dump with no store behind it
    promtool = binary("promtool")
    odd = tmp_path / "odd.txt"  # label values to escape: a quote and a backslash
    odd.write_text('4096 1 fs/we"ird\\name.c:7 func:odd\n8192 2 mm/a.c:1 func:a\n')
    for args in (
        ["--store", str(store)],
        ["--source", str(real("7.3", 2, 1))],
        ["--source", str(odd)],
    ):
        result = runner.invoke(app, ["export", "--format", fmt, *args])
        assert result.exit_code == 0, result.output

        # WHEN promtool checks it / THEN it passes, lint included
        check = subprocess.run(
            [promtool, "check", "metrics"], input=result.stdout, capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr
        assert check.stdout + check.stderr == ""


@pytest.mark.slow
def test_node_exporter_serves_what_record_textfile_wrote(tmp_path: Path) -> None:
    # GIVEN allocsnap record (the lean recorder process it becomes) that wrote --textfile
    # twice from a real capture
    exporter = binary("prometheus-node-exporter")
    folder = tmp_path / "textfile"
    folder.mkdir()
    textfile = folder / "allocsnap.prom"
    argv = [sys.executable, "-m", "allocsnap", "record", "--source", str(NEWEST), "--count", "2"]
    done = subprocess.run(
        [*argv, "--interval", "100ms", "--textfile", str(textfile), "--store", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(textfile.stat().st_mode) == 0o644
    assert [p.name for p in folder.iterdir()] == ["allocsnap.prom"]  # no temp file left

    # WHEN a real node_exporter reads the folder with its textfile collector
    port = free_port()
    proc = started(
        [
            exporter,
            "--collector.disable-defaults",
            "--collector.textfile",
            f"--collector.textfile.directory={folder}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        tmp_path / "node_exporter.log",
    )
    try:
        text = wait_for("node_exporter", lambda: get(f"http://127.0.0.1:{port}/metrics"))
    finally:
        stop(proc)

    # THEN its /metrics carries allocsnap's families with the capture's values, read cleanly
    ours = "\n".join(
        line for line in text.splitlines() if "allocsnap_" in line and "node_textfile" not in line
    )
    families = parse(ours)
    rows = oracle.rows(NEWEST)
    assert list(families["allocsnap_live_bytes"].values()) == [sum(r.bytes for r in rows)]
    assert sum(families["allocsnap_module_live_bytes"].values()) == sum(r.bytes for r in rows)
    # a second snapshot of the same dump: growth since the first, all zero
    assert set(families["allocsnap_call_site_growth_bytes"].values()) == {0.0}
    assert "node_textfile_scrape_error 0" in text


def test_export_of_a_store_is_what_the_library_gives(store: Path) -> None:
    # GIVEN the CLI's export and the library's exposition of the same snapshot
    result = runner.invoke(app, ["export", "--store", str(store)])
    # THEN they are the same text
    assert result.exit_code == 0, result.output
    assert result.stdout == metrics.exposition(store).text


def test_textfile_never_writes_through_a_planted_symlink(tmp_path: Path) -> None:
    # GIVEN a symlink planted where the textfile goes, pointing at a file to protect
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    folder = tmp_path / "textfile"
    folder.mkdir()
    textfile = folder / "allocsnap.prom"
    textfile.symlink_to(victim)

    # WHEN the recorder writes its textfile
    plan = recorder.Plan(interval=0.05, count=1, source=str(NEWEST), textfile=str(textfile))
    recorder.record(tmp_path / "store", plan)

    # THEN the link was replaced by the file, and the victim is untouched
    assert victim.read_bytes() == b"precious\n"
    assert not textfile.is_symlink()
    assert textfile.read_text().startswith("# HELP allocsnap_snapshot_info ")
    assert stat.S_IMODE(textfile.stat().st_mode) == 0o644


def test_textfile_must_be_a_prom_file_in_a_folder_that_exists(tmp_path: Path) -> None:
    # GIVEN --textfile values node_exporter could never read / THEN each is exit 2
    for path, why in [
        (tmp_path / "missing" / "a.prom", "does not exist"),
        (tmp_path / "a.txt", "only files named *.prom"),
        (tmp_path, "is a folder"),
    ]:
        result = runner.invoke(
            app,
            [
                "record",
                "--count",
                "1",
                "--source",
                str(NEWEST),
                "--textfile",
                str(path),
                "--store",
                str(tmp_path / "store"),
            ],
        )
        assert result.exit_code == 2, result.output
        assert why in result.stderr


@pytest.mark.parametrize(
    "address", ["0.0.0.0:9476", "[::]:9476", "192.0.2.1:9476", "example.org:80"]
)
def test_serve_refuses_an_address_that_is_not_loopback(address: str, store: Path) -> None:
    # GIVEN an address others can reach, without --allow-remote
    result = runner.invoke(app, ["serve", "--listen", address, "--store", str(store)])
    # THEN nothing listens: exit 2, saying why
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "--allow-remote" in result.stderr or "not a name" in result.stderr


ALERTS = Path(__file__).parent.parent / "docs" / "allocsnap-alerts.yml"
SITE = "fs/ext4/super.c:1391 [ext4] func:ext4_alloc_inode"
RULE_TESTS = """\
rule_files:
  - {rules}
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      # judged a leak from minute 10 on, at 1 MiB/hour
      - series: 'allocsnap_leak_detected{{{at},call_site="{site}"}}'
        values: '0x9 1x50'
      - series: 'allocsnap_leak_rate_bytes_per_hour{{{at},call_site="{site}"}}'
        values: '1048576x60'
      # steeper, but not judged a leak: no alert
      - series: 'allocsnap_leak_detected{{{at},call_site="mm/a.c:1 func:a"}}'
        values: '0x60'
      - series: 'allocsnap_leak_rate_bytes_per_hour{{{at},call_site="mm/a.c:1 func:a"}}'
        values: '99999999x60'
      # the last snapshot was taken at time 0, and profiling is on
      - series: 'allocsnap_snapshot_timestamp_seconds{{{at}}}'
        values: '0x60'
      - series: 'allocsnap_profiling_enabled{{{at}}}'
        values: '1x60'
    alert_rule_test:
      - eval_time: 30m
        alertname: KernelAllocationLeak
        exp_alerts: []
      - eval_time: 45m
        alertname: KernelAllocationLeak
        exp_alerts:
          - exp_labels:
              severity: warning
              job: allocsnap
              instance: db7:9476
              call_site: {site}
            exp_annotations:
              summary: Kernel allocations leak at {site} on db7:9476
              description: >-
                allocsnap leaks judges {site} leaking, growing by 1MiB per hour.
                Look closer with allocsnap history '{site}' on the host.
      - eval_time: 40m
        alertname: AllocsnapSnapshotsStale
        exp_alerts:
          - exp_labels:
              severity: warning
              job: allocsnap
              instance: db7:9476
            exp_annotations:
              summary: No new allocsnap snapshot on db7:9476 for 15 minutes
              description: >-
                The newest snapshot is 40m 0s old: check the allocsnap recorder and
                /proc/allocinfo on the host.
      - eval_time: 40m
        alertname: AllocsnapProfilingOff
        exp_alerts: []
"""


def test_the_example_alerting_rules_pass_promtool_and_fire(tmp_path: Path) -> None:
    # GIVEN the example rule file of the docs
    promtool = binary("promtool")
    check = subprocess.run(
        [promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 3 rules found" in check.stdout

    # WHEN promtool runs it over series shaped like allocsnap's
    tests = tmp_path / "alerts-test.yml"
    at = 'job="allocsnap",instance="db7:9476"'
    tests.write_text(RULE_TESTS.format(rules=ALERTS, site=SITE, at=at))
    done = subprocess.run([promtool, "test", "rules", str(tests)], capture_output=True, text=True)

    # THEN the leak alert fires only for the site judged a leak, after its 30 minutes, and the
    # stale-snapshot alert fires when the snapshots stop
    assert done.returncode == 0, done.stdout + done.stderr


def test_export_takes_a_snapshot_or_a_source_not_both(store: Path) -> None:
    result = runner.invoke(app, ["export", "first", "--source", str(NEWEST), "--store", str(store)])
    assert result.exit_code == 2
    assert "give SNAP ('first') or --source, not both" in result.stderr


def test_a_failed_textfile_write_is_said_and_recording_goes_on(tmp_path: Path) -> None:
    # GIVEN a recorder whose textfile folder disappears after its first snapshot was stored
    folder = tmp_path / "textfile"
    folder.mkdir()
    events: list[tuple[str, str]] = []

    def on_status(status: recorder.Status) -> None:
        events.append((status.event, status.message))
        if status.event == "snapshot" and status.taken == 1:
            folder.rmdir()

    # WHEN it records two snapshots
    plan = recorder.Plan(
        interval=0.05, count=2, source=str(NEWEST), textfile=str(folder / "allocsnap.prom")
    )
    status = recorder.record(tmp_path / "store", plan, on_status=on_status)

    # THEN each failed write is one event naming the file, and both snapshots were stored
    failed = [message for event, message in events if event == "textfile-failed"]
    assert len(failed) == 2
    assert all(m.startswith(f"textfile not written: cannot write {folder}") for m in failed)
    assert status.taken == 2
