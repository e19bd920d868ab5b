"""allocsnap report: what it gathers, the page it writes (in a real headless Chromium), the
text under 80 columns, and history --plot.

The store is bench/generate.py's small one (a known ground truth: leaks, a reboot, a module
unloaded and reloaded) with a profiling-off stretch written into its snapshots table, as the
recorder records one; expected values are computed from the Parquet files with plain pyarrow.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

from allocsnap import analysis
from allocsnap.cli import app
from allocsnap.errors import ExitCode
from allocsnap.filters import glob_to_regex
from allocsnap.present import page_data, page_html, page_text, svgchart, treemap
from bench.generate import LEAK_CLASSES, SMALL, Truth, generate
from tests.conftest import public, real

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()

START = SMALL.start
STEP = timedelta(seconds=SMALL.interval_s)
REBOOT = int(SMALL.snapshots * SMALL.reboot_at)  # index of the first snapshot of boot 2
OFF = (620, 640)  # snapshots [620, 640) are taken with vm.mem_profiling=0


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Truth]:
    """Return the small generated store, with a profiling-off stretch in its second boot."""
    store = tmp_path_factory.mktemp("report") / "store"
    truth = generate(store, SMALL)
    for path in (store / "snapshots").rglob("*.parquet"):
        table = pq.read_table(path)
        taken = table["taken_at"].to_pylist()
        off = [START + OFF[0] * STEP <= t < START + OFF[1] * STEP for t in taken]
        profiling = [
            0 if o else p for o, p in zip(off, table["profiling"].to_pylist(), strict=True)
        ]
        index = table.schema.get_field_index("profiling")
        column = pa.array(profiling, table.schema.field("profiling").type)
        pq.write_table(table.set_column(index, table.schema.field("profiling"), column), path)
    return store, truth


@pytest.fixture(scope="module")
def data(generated: tuple[Path, Truth]) -> page_data.ReportData:
    return page_data.gather(generated[0], top_n=10)


def stored_samples(store: Path) -> pa.Table:
    """Return every stored sample with its call site, read with plain pyarrow."""
    samples = pa.concat_tables(
        pq.read_table(p, columns=["snapshot_id", "taken_at", "tag_id", "bytes"])
        for p in sorted((store / "samples").rglob("*.parquet"))
    )
    tags = pa.concat_tables(pq.read_table(p) for p in sorted((store / "tags").rglob("*.parquet")))
    return samples.join(tags.select(["tag_id", "file", "function"]), "tag_id")


# -- what is gathered --------------------------------------------------------------------------


@pytest.mark.slow
def test_gather_marks_the_reboot_the_profiling_off_stretch_and_the_module_reload(
    data: page_data.ReportData,
) -> None:
    # GIVEN the generated store: reboot at snapshot 540, module absent in [216, 324), off stretch
    # THEN each is where it was made, and nothing else is marked
    reboots = [m.at for m in data.markers if m.kind == "reboot"]
    assert reboots == [START + REBOOT * STEP]
    modules = [(m.at, m.label) for m in data.markers if m.kind == "modules"]
    u0, u1 = (int(SMALL.snapshots * f) for f in SMALL.unload)
    assert modules == [
        (START + u0 * STEP, "modules unloaded: dummy_reload"),
        (START + u1 * STEP, "modules loaded: dummy_reload"),
    ]
    assert [(b.start, b.end) for b in data.bands] == [
        (START + OFF[0] * STEP, START + OFF[1] * STEP)
    ]
    assert "20 snapshots" in data.bands[0].label
    # THEN the totals line has one run per epoch: boot 1, boot 2 before and after the stretch
    runs = page_data.totals_chart(data).series[0].segments
    assert [len(r) for r in runs] == [REBOOT, OFF[0] - REBOOT, SMALL.snapshots - OFF[1]]


@pytest.mark.slow
def test_gather_finds_generated_leaks_with_their_series(
    data: page_data.ReportData, generated: tuple[Path, Truth]
) -> None:
    # GIVEN the ground truth's leaking call sites
    truth = generated[1]
    leaking = {truth.sites[t] for t, c in truth.classes.items() if c in LEAK_CLASSES}
    # THEN the candidates of the first boot, untouched by the profiling-off edit, are true leaks
    # (after it, a 13-minute epoch makes the top of a hump look like a ramp: the detector's
    # limit, not the report's)
    rows = data.leaks.rows.to_pylist()
    first_epoch = data.epochs.rows["epoch"][0].as_py()
    first_boot = {r["key"] for r in rows if r["epoch"] == first_epoch}
    assert len(rows) == 10 and first_boot and first_boot <= leaking
    # THEN each candidate has its series over its epoch, ending at its last value
    for row in rows:
        run = data.leak_series[row["key"]][row["epoch"]]
        assert run[0][0] == row["first_at"] and run[-1][0] == row["last_at"]
        assert run[-1][1] == row["last_bytes"]


@pytest.mark.slow
def test_tree_carries_the_bytes_of_the_last_snapshot_per_directory(
    data: page_data.ReportData, generated: tuple[Path, Truth]
) -> None:
    # GIVEN the last snapshot's samples read straight from the Parquet files
    samples = stored_samples(generated[0])
    last = pc.max(samples["taken_at"]).as_py()
    rows = samples.filter(pc.equal(samples["taken_at"], last)).to_pylist()
    base_at = START + OFF[1] * STEP  # the newest epoch begins after the off stretch
    base = samples.filter(pc.equal(samples["taken_at"], base_at)).to_pylist()
    expected: dict[str, int] = {}
    change: dict[str, int] = {}
    for r in rows:
        top = r["file"].split("/")[0]
        expected[top] = expected.get(top, 0) + r["bytes"]
        change[top] = change.get(top, 0) + r["bytes"]
    for r in base:
        top = r["file"].split("/")[0]
        change[top] = change.get(top, 0) - r["bytes"]
    # THEN the tree's top level holds those sums, largest first, and its root the total
    assert data.tree_base.taken_at == base_at
    assert data.tree.bytes == sum(expected.values())
    top_level = {n.name: (n.bytes, n.delta) for n in data.tree.children}
    assert top_level == {k: (v, change[k]) for k, v in expected.items()}
    sizes = [n.bytes for n in data.tree.children]
    assert sizes == sorted(sizes, reverse=True)
    # THEN a function's node sums its lines: pick the largest one and add it up by hand
    node = data.tree
    while node.children:
        node = node.children[0]
    file, function = node.path.rsplit("/", 1)
    assert node.bytes == sum(
        r["bytes"] for r in rows if r["file"] == file and f"{r['function']}()" == function
    )


@pytest.mark.slow
def test_window_snapshots_follow_the_queries_window(generated: tuple[Path, Truth]) -> None:
    # GIVEN a window of the last 30 minutes, counted back from the newest snapshot
    store = generated[0]
    window = analysis.Window(since="30m")
    metas = analysis.window_snapshots(store, window)
    epochs = analysis.epochs(store, window)
    # THEN it starts where the queries' window starts, and counts as many counting snapshots
    assert metas[0].taken_at == epochs.first_at
    assert sum(1 for m in metas if m.profiling != 0) == epochs.snapshots
    assert len(metas) == 181  # 30 minutes at 10 s, both ends included


def test_exact_glob_matches_only_the_key() -> None:
    key = "drivers/net/ethernet/intel/ice/ice_txrx.c:682 [ice] func:ice_alloc_mapped_page"
    with warnings.catch_warnings():  # "[[]" is a nested set to Python's re, not to RE2's
        warnings.simplefilter("ignore", FutureWarning)
        regex = re.compile(glob_to_regex(page_data.exact_glob(key)))
    assert regex.match(key)
    assert not regex.match(key.replace("[ice]", "i"))
    assert not regex.match(key + "2")


# -- the page ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_html_is_one_self_contained_file(data: page_data.ReportData) -> None:
    page = page_html.html(data)
    # THEN nothing in it names a place to fetch from, and the browser is told to fetch nothing
    assert not re.search(r"https?:", page)
    assert not re.search(r"\s(src|href)=", page)
    assert '<meta http-equiv="Content-Security-Policy" content="default-src \'none\';' in page
    assert page.count("<script>") == 1 and page.count("<style>") == 1


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(url: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium on ``url`` with no network, no sync and an empty profile."""
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile}", *args, url,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_the_page_renders_in_chromium(
    data: page_data.ReportData, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # GIVEN the report written to a file
    page = tmp_path / "report.html"
    page.write_text(page_html.html(data), encoding="utf-8")
    url = page.as_uri()
    # WHEN Chromium runs its script and dumps the DOM, zoomed into the largest directory
    top = data.tree.children[0]
    dom = chromium(f"{url}#tree={top.path}", tmp_path / "p1", "--dump-dom").stdout
    # THEN the charts are there: 3 runs of totals, the reboot, the off stretch, a leak chart each
    totals = dom.split('data-chart="totals"', 1)[1].split("</svg>", 1)[0]
    assert totals.count("<polyline") == 3
    assert totals.count('class="marker reboot"') == 1
    assert totals.count('class="band profiling-off"') == 1
    assert dom.count('data-chart="leak"') == len(data.leak_series)
    # THEN the script zoomed: the root level is hidden, the directory's shown, two path buttons
    levels = dict(re.findall(r'<g class="level" data-node="([^"]*)"[^>]*?style="([^"]*)"', dom))
    assert "none" in levels[""] and "none" not in levels[top.path]
    assert re.search(
        r'<div id="tree-path"><button>all</button> / <button>[^<]+</button></div>', dom
    )
    # WHEN Chromium takes a screenshot of the whole page
    shot = tmp_path / "report.png"
    chromium(url, tmp_path / "p2", f"--screenshot={shot}", "--window-size=1280,4400")
    # THEN the charts drew: the series' blue, the reboot's red and the tree's colours are there
    counts = colour_counts(shot)
    assert counts["series"] > 2000
    assert counts["reboot"] > 100
    assert counts["grew"] + counts["shrank"] > 50_000
    if request.config.getoption("--update-golden"):
        chromium(url, tmp_path / "p3", f"--screenshot={ROOT / 'docs/report.png'}",
                 "--window-size=1100,1500")  # fmt: skip


def colour_counts(png: Path) -> dict[str, int]:
    """Return how many pixels of the screenshot are near each chart colour."""
    from PIL import Image

    wanted = {
        "series": (0x1F, 0x77, 0xB4),
        "reboot": (0xC0, 0x00, 0x00),
        "grew": (0xD6, 0x27, 0x28),
        "shrank": (0x31, 0x68, 0xB4),
    }
    with Image.open(png) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    counts = {}
    for name, rgb in wanted.items():
        near = np.abs(pixels - np.array(rgb, dtype=np.int16)).max(axis=2) < 24
        counts[name] = int(near.sum())
    return counts


# -- text and Markdown -------------------------------------------------------------------------


@pytest.mark.slow
def test_text_report_lines_fit_in_79_columns_on_generated_data(data: page_data.ReportData) -> None:
    for markdown in (False, True):
        out = page_text.text(data, markdown=markdown)
        assert max(len(line) for line in out.splitlines()) <= 79
        # THEN the sections are all there, and the events are listed
        for title in ("Total live bytes", "Leak candidates", "Top movers", "Where the memory"):
            assert title in out
        assert "reboot: boot" in out and "profiling off" in out
        assert "modules unloaded: dummy_reload" in out
    assert page_text.text(data, markdown=True).count("```") % 2 == 0


@pytest.fixture(scope="module")
def real_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a store of real captures: a VM's boot (modules loaded and removed) and the public
    six-day ice-driver dumps, each host's dumps imported an hour (or two days) apart."""
    store = tmp_path_factory.mktemp("real") / "store"
    dumps = [(real("6.12", 1, i), "vm", f"2026-11-26T1{i}:00:00Z") for i in range(5)]
    dumps += [
        (public(p), "ice", at)
        for p, at in (("11", "2025-06-26T08:00:00Z"), ("12", "2025-06-30T08:00:00Z"),
                      ("13", "2025-07-02T10:18:00Z"))
    ]  # fmt: skip
    for path, host, at in dumps:
        result = invoke("import", str(path), "--host", host, "--at", at, "--store", str(store))
        assert result.exit_code == 0, result.stderr
    return store


@pytest.mark.slow
@pytest.mark.parametrize("host", ["vm", "ice"])
@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_text_report_lines_fit_in_79_columns_on_real_data(
    real_store: Path, host: str, fmt: str
) -> None:
    result = invoke("report", "--store", str(real_store), "--host", host, "--format", fmt)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 79, max(lines, key=len)
    if host == "ice":  # the ice page pool is the largest mover over the six days
        movers = result.stdout.split("Top movers", 1)[1]
        assert "ice_alloc_mapped_page" in movers.split("func:", 2)[1]


# -- the command -------------------------------------------------------------------------------


@pytest.mark.slow
def test_report_command_writes_the_page(generated: tuple[Path, Truth], tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    result = invoke("report", "--store", str(generated[0]), "--since", "1h", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith(f"wrote {out} (")
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_report_on_a_missing_store_says_so(tmp_path: Path) -> None:
    result = invoke("report", "--store", str(tmp_path / "none"))
    assert result.exit_code == ExitCode.NO_STORE
    assert result.stderr.startswith("Error: ")


@pytest.mark.slow
def test_report_refuses_a_window_of_several_hosts(real_store: Path) -> None:
    result = invoke("report", "--store", str(real_store))
    assert result.exit_code == ExitCode.USAGE
    assert "choose one with --host" in result.stderr


# -- history --plot ----------------------------------------------------------------------------


@pytest.mark.slow
def test_history_plot_svg_draws_each_series_and_the_reboot(
    generated: tuple[Path, Truth], tmp_path: Path
) -> None:
    out = tmp_path / "h.svg"
    result = invoke("history", "fs/file29*", "--store", str(generated[0]), "--plot", str(out))
    assert result.exit_code == 0, result.stderr
    svg = out.read_text(encoding="utf-8")
    assert svg.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    # THEN one series per matching call site (counted in the stored tags), each split at the
    # reboot and the profiling-off stretch into three runs
    tags = pa.concat_tables(pq.read_table(p) for p in (generated[0] / "tags").rglob("*.parquet"))
    matching = [f for f in tags["file"].to_pylist() if f.startswith("fs/file29")]
    assert svg.count('<g class="series"') == len(matching) >= 1
    assert svg.count("<polyline") == 3 * len(matching)
    assert svg.count('class="marker reboot"') == 1
    assert svg.count('class="band profiling-off"') == 1


@pytest.mark.slow
def test_history_plot_png(generated: tuple[Path, Truth], tmp_path: Path) -> None:
    out = tmp_path / "h.png"
    result = invoke("history", "fs/file29*", "--store", str(generated[0]), "--plot", str(out))
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_history_plot_png_without_matplotlib_names_the_extra(
    generated: tuple[Path, Truth], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an installation without matplotlib (hidden: it is installed for the tests)
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "h.png"
    result = invoke("history", "fs/file29*", "--store", str(generated[0]), "--plot", str(out))
    assert result.exit_code == ExitCode.FAILURE
    assert "pip install 'allocsnap[plot]'" in result.stderr
    assert not out.exists()


@pytest.mark.slow
def test_history_plot_other_suffix_is_a_usage_error(
    generated: tuple[Path, Truth], tmp_path: Path
) -> None:
    out = tmp_path / "h.jpg"
    result = invoke("history", "fs/file29*", "--store", str(generated[0]), "--plot", str(out))
    assert result.exit_code == ExitCode.USAGE
    assert "--plot writes .svg or .png files" in result.stderr


# -- the SVG writer ----------------------------------------------------------------------------


def test_squarify_tiles_the_box_in_proportion() -> None:
    sizes = [500.0, 300, 120, 50, 20, 9, 1]
    box = treemap.Rect(0, 0, 960, 540)
    rects = treemap.squarify(sizes, box)
    total = sum(sizes)
    for size, r in zip(sizes, rects, strict=True):
        assert r.w * r.h == pytest.approx(size / total * 960 * 540)
        assert r.x >= -1e-9 and r.y >= -1e-9
        assert r.x + r.w <= 960 + 1e-6 and r.y + r.h <= 540 + 1e-6
    for i, a in enumerate(rects):  # no two overlap
        for b in rects[i + 1 :]:
            overlap_w = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
            overlap_h = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
            assert overlap_w <= 1e-6 or overlap_h <= 1e-6


def test_nice_range_uses_round_binary_steps() -> None:
    assert svgchart.nice_range(0, 7.1 * 2**30, binary=True) == (0, 8 * 2**30, 2 * 2**30)
    assert svgchart.nice_range(0, 90 * 2**20, binary=True) == (0, 100 * 2**20, 20 * 2**20)
    assert svgchart.nice_range(0, 3, binary=True) == (0, 3, 1)


def test_time_ticks_are_round_utc_times() -> None:
    t0 = datetime(2026, 1, 5, 0, 3, tzinfo=UTC)
    ticks = svgchart.time_ticks(t0, t0 + timedelta(hours=2))
    assert [label for _, label in ticks] == ["00:15", "00:30", "00:45", "01:00", "01:15",
                                              "01:30", "01:45", "02:00"]  # fmt: skip


@pytest.mark.slow
def test_report_of_a_single_snapshot_says_nothing_changed(real_store: Path) -> None:
    # GIVEN a window holding only the last ice dump
    args = ("report", "--store", str(real_store), "--host", "ice", "--since", "0s")
    # THEN the text says so instead of printing empty tables, and the page still draws
    text = invoke(*args, "--format", "text")
    assert text.exit_code == 0, text.stderr
    assert "nothing changed in this window" in text.stdout and "no changes" in text.stdout
    page = invoke(*args)
    assert page.exit_code == 0, page.stderr
    assert 'data-chart="totals"' in page.stdout and "No changes." in page.stdout
