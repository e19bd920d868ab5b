"""The metrics exposition (allocsnap/openmetrics.py): escaping, names, and a series limit under
which every family still adds up to the snapshot's totals, computed by tests/oracle.py."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from allocsnap import openmetrics
from allocsnap.errors import UsageError
from allocsnap.kernel import capture, source
from allocsnap.model import Snapshot
from tests import oracle
from tests.conftest import real

AT = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')
UNITS = ("_bytes", "_seconds", "_allocations", "_bytes_per_hour")


def snap(path: Path, at: datetime = AT, boot: str = "b1") -> Snapshot:
    raw = source.RawRead(
        text=path.read_bytes(),
        source="file",
        taken_at=at,
        boot_id=boot,
        kernel="6.12.117",
        profiling=1,
    )
    return capture.snapshot(raw, host="vm1")


def unescape(value: str) -> str:
    """Undo the text format's escapes, independently of allocsnap's escaping."""
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), value)


def parse(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Return family -> labels -> value from text exposition, checking HELP and TYPE come
    first for each family and that a family's samples are together."""
    families: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    typed: list[str] = []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            assert kind == "gauge" and name not in typed
            typed.append(name)
            families[name] = {}
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, line
        name, labels, value = m.groups()
        assert name == typed[-1], f"{name} outside its family"
        pairs = tuple((k, unescape(v)) for k, v in LABEL.findall(labels or ""))
        families[name][pairs] = float(value)
    return families


def values(
    families: dict[str, dict[tuple[tuple[str, str], ...], float]], name: str
) -> dict[str, float]:
    """Return one family's values by its single label's value."""
    return {labels[0][1]: v for labels, v in families[name].items()}


def test_label_values_escape_backslash_quote_and_newline() -> None:
    # GIVEN a value with each character the text formats escape
    # THEN each is escaped as the exposition format says, and nothing else is
    assert openmetrics.escape_label('a\\b"c\nd é') == 'a\\\\b\\"c\\nd é'
    assert openmetrics.format_labels({"x": 'q"'}) == '{x="q\\""}'


def test_a_call_site_named_with_quotes_and_backslashes_reads_back(tmp_path: Path) -> None:
    # GIVEN a dump whose file name holds a quote and a backslash
    dump = tmp_path / "odd.txt"
    dump.write_text('4096 1 fs/we"ird\\name.c:7 func:odd\n8192 2 mm/a.c:1 func:a\n')

    # WHEN exported
    text = openmetrics.exposition(snap(dump)).text

    # THEN the label reads back as the kernel printed the call site
    sites = values(parse(text), "allocsnap_call_site_live_bytes")
    assert sites['fs/we"ird\\name.c:7 func:odd'] == 4096
    assert 'call_site="fs/we\\"ird\\\\name.c:7 func:odd"' in text


def test_every_name_follows_the_conventions() -> None:
    # GIVEN an exposition with every family: growth and leaks included
    before = snap(real("6.12", 1, 2))
    after = snap(real("6.12", 1, 3), AT + timedelta(minutes=1))
    leaks = openmetrics.Leaks(1, (openmetrics.LeakSeries("mm/a.c:1 func:a", 3600.0, True),))
    text = openmetrics.exposition(after, before, leaks).text
    families = parse(text)

    # THEN every documented family is there, valid, gauge-only, with a unit where it counts
    assert list(families) == list(openmetrics.FAMILIES)
    for name in families:
        assert re.fullmatch(r"allocsnap_[a-z_]+", name)
        assert not name.endswith("_total"), "gauges never end in _total"
        assert f"# HELP {name} " in text
        counted = name.endswith(UNITS)
        assert counted or name.endswith(("_info", "_enabled", "_sites", "_leaks", "_detected"))
    assert text.endswith("\n# EOF\n")
    # the documentation lists each family
    docs = (Path(__file__).parent.parent / "docs" / "commands.md").read_text()
    for name in families:
        assert f"`{name}`" in docs


@pytest.mark.parametrize("max_series", [openmetrics.MIN_SERIES + 2, 60, 500])
def test_families_add_up_to_the_totals_under_the_series_limit(max_series: int) -> None:
    # GIVEN a capture with modules loaded, and the one before it in the same boot
    before_path, after_path = real("6.12", 1, 2), real("6.12", 1, 3)
    after = snap(after_path, AT + timedelta(minutes=1))

    # WHEN exported under a series limit
    exp = openmetrics.exposition(
        after, snap(before_path), limits=openmetrics.Limits(top_n=20, max_series=max_series)
    )
    families = parse(exp.text)

    # THEN the limit holds, and each family sums to the totals the oracle computes
    rows = oracle.rows(after_path)
    total_bytes = sum(r.bytes for r in rows)
    total_calls = sum(r.signed_calls for r in rows)
    growth = total_bytes - sum(r.bytes for r in oracle.rows(before_path))
    series = sum(len(f) for f in families.values())
    assert series == exp.series <= max_series
    for family, expected in [
        ("allocsnap_call_site_live_bytes", total_bytes),
        ("allocsnap_call_site_live_allocations", total_calls),
        ("allocsnap_call_site_growth_bytes", growth),
        ("allocsnap_module_live_bytes", total_bytes),
        ("allocsnap_module_live_allocations", total_calls),
        ("allocsnap_directory_live_bytes", total_bytes),
        ("allocsnap_directory_live_allocations", total_calls),
    ]:
        assert sum(families[family].values()) == expected, family
    assert list(families["allocsnap_live_bytes"].values()) == [total_bytes]
    # and every named call site carries its own value
    sums = oracle.sums(rows)
    for site, value in values(families, "allocsnap_call_site_live_bytes").items():
        if site != openmetrics.OTHER:
            assert value == sums[site][0]


def test_top_call_sites_by_bytes_and_by_growth_are_named() -> None:
    # GIVEN two captures of one boot: ext4, zram and loop came in between
    before_path, after_path = real("6.12", 1, 2), real("6.12", 1, 3)

    # WHEN the top 3 are exported
    exp = openmetrics.exposition(
        snap(after_path, AT + timedelta(minutes=1)),
        snap(before_path),
        limits=openmetrics.Limits(top_n=3),
    )
    named = set(values(parse(exp.text), "allocsnap_call_site_live_bytes")) - {openmetrics.OTHER}

    # THEN they are the oracle's top 3 by bytes and top 3 by growth
    after = oracle.sums(oracle.rows(after_path))
    by_bytes = sorted(after, key=lambda k: (-after[k][0], k))[:3]
    changes = oracle.diff(oracle.rows(before_path), oracle.rows(after_path))
    rising = sorted((c for c in changes if c.delta_bytes > 0), key=lambda c: -c.delta_bytes)
    assert named == set(by_bytes) | {c.key for c in rising[:3]}


def test_modules_and_directories_are_every_one_of_them() -> None:
    # GIVEN a capture with modules
    path = real("6.12", 1, 3)
    families = parse(openmetrics.exposition(snap(path)).text)
    rows = oracle.rows(path)

    # THEN each module and each top directory has its own series with the oracle's sum
    modules = {k: b for k, (b, _c) in oracle.sums(rows, "module").items()}
    directories = {k: b for k, (b, _c) in oracle.sums(rows, "dir", 1).items()}
    assert values(families, "allocsnap_module_live_bytes") == modules
    assert values(families, "allocsnap_directory_live_bytes") == directories


def test_growth_needs_the_same_boot() -> None:
    # GIVEN two snapshots of different boots
    families = parse(
        openmetrics.exposition(
            snap(real("6.12", 1, 3), AT + timedelta(minutes=1)), snap(real("6.12", 1, 2), boot="b0")
        ).text
    )
    # THEN no growth is told across the reboot
    assert "allocsnap_call_site_growth_bytes" not in families


def test_too_small_a_limit_is_a_usage_error() -> None:
    # GIVEN a limit below the fixed series: info, time, profiling, sites, bytes, allocations,
    # and an (other) pair of call sites, directories and modules
    # THEN it is refused, naming the minimum
    with pytest.raises(UsageError, match=r"--max-series 5 is too few: .* at least 12 series"):
        openmetrics.exposition(snap(real("6.12", 1, 3)), limits=openmetrics.Limits(max_series=5))
    # with growth and leaks: the interval, the leak count and an (other) growth too, which is
    # the minimum the options allow
    with pytest.raises(UsageError, match=r"at least 15 series"):
        openmetrics.exposition(
            snap(real("6.12", 1, 3), AT + timedelta(minutes=1)),
            snap(real("6.12", 1, 2)),
            openmetrics.Leaks(0),
            openmetrics.Limits(max_series=14),
        )
    assert openmetrics.MIN_SERIES == 15


def test_prometheus_text_is_the_same_without_eof() -> None:
    # GIVEN the two text formats of one snapshot
    s = snap(real("6.12", 1, 3))
    om = openmetrics.exposition(s)
    prom = openmetrics.exposition(s, openmetrics=False)

    # THEN they differ by the OpenMetrics end marker only, and say which they are
    assert om.text == prom.text + "# EOF\n"
    assert om.content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert prom.content_type.startswith("text/plain; version=0.0.4")
