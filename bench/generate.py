"""Generate a realistic, seeded allocsnap store with known leaks (the ground truth of bench/).

A store here is what ``allocsnap record`` would leave after a host-day at 10 s: N call sites
(8,000 by default) shaped like the real captures in ../shared/fixtures/real (about 84% of rows
stay ``0 0``, sizes heavy-tailed), and among the live ones a known mix of behaviours:

=========== ============================================================== ========
class       what the series does                                           a leak?
=========== ============================================================== ========
zero        stays 0                                                        no
steady      a constant                                                     no
noise       a constant plus independent jitter (slab caches, buffers)      no
churn       mostly 0, bursts of allocations that are freed again            no
drift       a random walk (page cache, dentries: up and down for hours)    no
sawtooth    grows linearly, then everything is freed, again and again      no
step        one or two sudden steps up (a pool grown once), then flat      no
hump        grows for hours, then is freed back to where it started        no
module      a module's sites: unloaded for a while, reloaded (series break) no
leak        grows linearly, with jitter                                     yes
stairs      grows in many small steps (a leak per event), with jitter       yes
buried      grows linearly under stationary noise: r² 0.3–0.7 (``hard``)   yes
walk        a random walk whose Mann–Kendall z over the epoch is > 5        no
            (``hard``)
=========== ============================================================== ========

``buried`` and ``walk`` (``Config.hard``, on by default, off in ``SMALL``) are the hard cases
of issue 16: a leak that a least-squares ``r² >= 0.8`` rule misses, and drifts that a trend
test alone calls leaks. They replace some ``zero`` tags and draw from a random generator of
their own, so every other tag's series is the same with or without them.

One reboot (a new ``boot_id``) restarts every counter; leaks start leaking again from their
base. Writing 8,640 snapshots one file each is slow (three files per snapshot through
``allocsnap.store.write``), so samples are written as one file per hour, sorted by
(tag, time) in the layout of the recorder's compacted hours (``compaction.write_compacted``),
each with the snapshots file of the same name that commits it, in the same hive layout: the
store's views read them unchanged. ``Config``'s ``host``, ``leaky`` and ``variant`` make a
fleet: hosts with the same call sites, some leaking.

Usage: python bench/generate.py OUT [--tags 8000] [--snapshots 8640] [--seed 1]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from allocsnap import __version__
from allocsnap.model import SCHEMA_VERSION, tag_id
from allocsnap.store import compaction
from allocsnap.store.layout import MARKER, STORE_SNAPSHOT_SCHEMA

LEAK_CLASSES = ("leak", "stairs", "buried")

# share of all tags in each class; "zero" takes the rest (about 84% with the defaults)
SHARES = {
    "steady": 0.06,
    "noise": 0.035,
    "churn": 0.012,
    "drift": 0.012,
    "sawtooth": 0.008,
    "step": 0.008,
    "hump": 0.006,
    "leak": 0.013,
    "stairs": 0.009,
}
HARD_SHARES = {"buried": 0.004, "walk": 0.004}  # taken from the "zero" tags when Config.hard
DECOY_KINDS = ("drift", "walk", "step", "sawtooth", "hump", "noise")
MODULE_TAGS = 24  # sites of the module that is unloaded and reloaded
MODULES = ("ext4", "xfs", "nvme", "ice", "kvm", "i915", "btrfs", "nf_conntrack")
DIRS = ("mm", "fs", "kernel", "net/core", "net/ipv4", "drivers/base", "block", "lib", "security")


@dataclass(frozen=True)
class Config:
    """What to generate."""

    tags: int = 8000
    snapshots: int = 8640
    interval_s: float = 10.0
    seed: int = 1
    host: str = "bench"
    start: datetime = datetime(2026, 1, 5, tzinfo=UTC)
    reboot_at: float = 0.75  # fraction of the snapshots after which the host reboots
    unload: tuple[float, float] = (0.3, 0.45)  # fractions where the module is absent
    rows_per_file: int = 360  # snapshots per samples file (an hour at 10 s)
    # a fleet of hosts: the same seed gives every host the same call sites and series; a
    # variant scales each tag by its own factor around 1 (sd 2%), and a host that is not
    # leaky keeps its leak and stairs tags flat at their first value of each epoch
    leaky: bool = True
    variant: int = 0
    hard: bool = True  # add the buried leaks and the random walks of HARD_SHARES
    # at least this many call sites of every decoy kind of DECOY_KINDS (bench/verdicts.py: a
    # false-positive rate of 2% needs a few hundred of each to be measured); the extra ones
    # are taken from the "zero" tags and drawn from a generator of their own, so every other
    # tag's series is the same with or without them
    decoys: int = 0


SMALL = Config(tags=1000, snapshots=720, seed=7, rows_per_file=720, hard=False)
"""The configuration of the tests: two hours of 400 tags at 10 s."""


@dataclass
class Truth:
    """Ground truth: the class of every tag, by tag id and by call site text."""

    classes: dict[int, str] = field(default_factory=dict)
    sites: dict[int, str] = field(default_factory=dict)
    extra: set[int] = field(default_factory=set)  # the decoys added by Config.decoys

    def leaks(self) -> set[int]:
        """Return the ids of the tags that leak."""
        return {t for t, c in self.classes.items() if c in LEAK_CLASSES}

    def to_json(self) -> str:
        """Return the truth as JSON: ``{tag_id: [class, call site]}``."""
        rows = {str(t): [c, self.sites[t]] for t, c in sorted(self.classes.items())}
        return json.dumps(rows, indent=0)


def generate(out: Path, config: Config = Config()) -> Truth:
    """Write a store at ``out`` (which must not exist) and return its ground truth."""
    rng = np.random.default_rng(config.seed)
    out.mkdir(parents=True)
    marker = {"schema_version": SCHEMA_VERSION, "created_by": f"allocsnap {__version__}"}
    (out / MARKER).write_text(json.dumps(marker, indent=1) + "\n")

    tags, truth = _tags(rng, config)
    if not config.leaky:
        truth.classes = {k: "steady" if c in LEAK_CLASSES else c for k, c in truth.classes.items()}
    n, t = config.snapshots, config.tags
    start = np.datetime64(config.start.astimezone(UTC).replace(tzinfo=None), "us")
    times = start + np.arange(n) * np.timedelta64(round(config.interval_s * 1e6), "us")
    reboot = int(n * config.reboot_at)
    epochs = [(0, reboot), (reboot, n)] if 0 < reboot < n else [(0, n)]
    values = np.zeros((t, n), dtype=np.int64)
    classes = [truth.classes[int(str(i))] for i in tags["tag_id"]]
    leak_rows = np.array([c in LEAK_CLASSES for c in classes])
    hard_rng = np.random.default_rng([config.seed, 16])
    extra = [int(str(i)) in truth.extra for i in tags["tag_id"]]
    extra_rng = np.random.default_rng([config.seed, 63])
    for lo, hi in epochs:
        values[:, lo:hi] = _series(
            rng, classes, hi - lo, n, config.interval_s, hard_rng, extra, extra_rng
        )
        if not config.leaky:
            values[leak_rows, lo:hi] = values[leak_rows, lo : lo + 1]
    if config.variant:
        factor = np.random.default_rng([config.seed, config.variant]).normal(1.0, 0.02, t)
        values = np.round(values * np.maximum(factor, 0.5)[:, None]).astype(np.int64)
    present = np.ones((t, n), dtype=bool)
    u0, u1 = (int(n * f) for f in config.unload)
    module_rows = np.array([c == "module" for c in classes])
    present[np.ix_(module_rows, np.arange(u0, u1))] = False
    object_size = rng.choice([8, 16, 32, 64, 128, 192, 256, 512, 1024, 4096], size=t)
    calls = values // object_size[:, None]

    # ids and boots differ between hosts, as real ones do (a snapshot id hashes the host)
    boots = [_host_hex(config.host, _hex(rng, 32)) for _ in epochs]
    ids = [_host_hex(config.host, _hex(rng, 12)) for _ in range(n)]
    _write_tags(out, tags)
    _write_snapshots(out, config, times, ids, boots, epochs, values, calls, present, module_rows)
    _write_samples(out, config, tags, times, ids, values, calls, present)
    (out / "truth.json").write_text(truth.to_json())
    return truth


def _hex(rng: np.random.Generator, digits: int) -> str:
    return "".join(f"{b:02x}" for b in rng.integers(0, 256, size=digits // 2))


def _host_hex(host: str, drawn: str) -> str:
    return hashlib.blake2b(f"{host}\0{drawn}".encode(), digest_size=len(drawn) // 2).hexdigest()


def _tags(rng: np.random.Generator, config: Config) -> tuple[dict[str, list[object]], Truth]:
    """Return the tags table's columns and each tag's class."""
    t = config.tags
    counts = {name: max(1, round(share * t)) for name, share in SHARES.items()}
    counts["module"] = MODULE_TAGS
    counts["zero"] = t - sum(counts.values())
    labels = [name for name, k in counts.items() for _ in range(k)]
    rng.shuffle(labels)
    if config.hard:
        hard_rng = np.random.default_rng([config.seed, 61])
        zeros = [i for i, label in enumerate(labels) if label == "zero"]
        picked = hard_rng.permutation(zeros)
        at = 0
        for name, share in HARD_SHARES.items():
            k = max(1, round(share * t))
            for i in picked[at : at + k]:
                labels[i] = name
            at += k
    extra = set()
    if config.decoys:
        zeros = [i for i, label in enumerate(labels) if label == "zero"]
        picked = np.random.default_rng([config.seed, 62]).permutation(zeros)
        at = 0
        for name in DECOY_KINDS:
            k = max(0, config.decoys - labels.count(name))
            if name == "walk" and not config.hard:
                k = 0
            for i in picked[at : at + k]:
                labels[i] = name
                extra.add(i)
            at += k
    # the module's sites sort together and carry the module name, like a real module's rows
    names = ("tag_id", "file", "line", "module", "function")
    columns: dict[str, list[object]] = {k: [] for k in names}
    truth = Truth()
    for i, label in enumerate(labels):
        if label == "module":
            module: str | None = "dummy_reload"
            file = f"drivers/misc/dummy_reload/core{i % 3}.c"
        else:
            module = MODULES[i % len(MODULES)] if rng.random() < 0.3 else None
            base = f"drivers/{module}" if module else DIRS[i % len(DIRS)]
            file = f"{base}/file{i % 97}.c"
        line = int(rng.integers(10, 5000))
        function = f"fn_{i}"  # names say nothing about the class
        tid = tag_id(module, file, line, function)
        columns["tag_id"].append(tid)
        columns["file"].append(file)
        columns["line"].append(line)
        columns["module"].append(module)
        columns["function"].append(function)
        truth.classes[tid] = label
        if i in extra:
            truth.extra.add(tid)
        mod = f" [{module}]" if module else ""
        truth.sites[tid] = f"{file}:{line}{mod} func:{function}"
    return columns, truth


def _series(
    rng: np.random.Generator,
    classes: list[str],
    n: int,
    total: int,
    interval_s: float,
    hard_rng: np.random.Generator | None = None,
    extra: list[bool] | None = None,
    extra_rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Return one epoch's live bytes, one row per tag, from the epoch's first snapshot. The
    rows marked ``extra`` (Config.decoys) draw from ``extra_rng``, the others from ``rng`` and
    ``hard_rng`` as without them."""
    out = np.zeros((len(classes), n), dtype=np.int64)
    x = np.arange(n, dtype=np.float64) / max(n - 1, 1)  # 0 … 1 over the epoch
    scale = n / total  # a leak grows by about `size` over the whole store, less per epoch
    hard_rng = hard_rng or np.random.default_rng(0)
    main_rng = rng
    for row, label in enumerate(classes):
        if label == "zero":
            continue
        added = extra is not None and extra_rng is not None and extra[row]
        if label in HARD_SHARES:
            out[row] = _hard(extra_rng if added and extra_rng else hard_rng, label, n, scale)
            continue
        rng = extra_rng if added and extra_rng else main_rng
        base = float(np.exp(rng.normal(9.5, 2.2)))  # heavy-tailed, median ~13 KiB
        size = float(np.exp(rng.uniform(np.log(2 << 20), np.log(1 << 30))))  # 2 MiB … 1 GiB
        if label in ("steady", "module"):
            y = np.full(n, base)
        elif label == "noise":
            y = base + rng.normal(0, rng.uniform(0.02, 0.3) * (base + size / 50), n)
        elif label == "churn":
            bursts = rng.random(n) < rng.uniform(0.01, 0.1)
            y = np.where(bursts, rng.uniform(0.1, 1.0, n) * size / 10, 0.0)
        elif label == "drift":
            step = rng.normal(0, size * rng.uniform(0.2, 1.0) / np.sqrt(n), n)
            y = base + size + np.cumsum(step)
        elif label == "sawtooth":
            # at least a cycle and a half in every epoch: a longer one is a ramp, not a sawtooth
            period = rng.uniform(total / 24, total / 6)  # snapshots
            phase = rng.uniform(0, 1)
            y = base + size * (((np.arange(n) / period) + phase) % 1.0)
            y += rng.normal(0, 0.01 * size, n)
        elif label == "step":
            y = np.full(n, base)
            for _ in range(int(rng.integers(1, 3))):
                y[int(rng.uniform(0.1, 0.9) * n) :] += size * rng.uniform(0.3, 1.0)
            y += rng.normal(0, 0.01 * size, n)
        elif label == "hump":
            top = rng.uniform(0.3, 0.7)
            y = base + size * np.where(x < top, x / top, np.maximum(0, 1 - (x - top) / 0.25))
            y += rng.normal(0, 0.01 * size, n)
        elif label == "leak":
            growth = size * scale
            y = base + growth * x + rng.normal(0, rng.uniform(0, 0.15) * growth, n)
        elif label == "stairs":
            growth = size * scale
            events = max(5, int(rng.uniform(5, 60) * scale))
            at = np.sort(rng.integers(0, n, events))
            y = base + growth / events * np.searchsorted(at, np.arange(n), side="right")
            y += rng.normal(0, rng.uniform(0, 0.05) * growth, n)
        else:
            raise ValueError(label)
        out[row] = np.maximum(0, np.round(y)).astype(np.int64)
    return out


def _hard(rng: np.random.Generator, label: str, n: int, scale: float) -> np.ndarray:
    """Return one epoch of a buried leak or of a random walk that climbs (Mann–Kendall z > 5
    over 120 evenly spaced points), drawn from ``rng`` alone."""
    base = float(np.exp(rng.normal(9.5, 2.2)))
    size = float(np.exp(rng.uniform(np.log(8 << 20), np.log(1 << 30)))) * scale
    x = np.arange(n, dtype=np.float64) / max(n - 1, 1)
    if label == "buried":
        r2 = rng.uniform(0.3, 0.7)  # share of the variance the line explains
        sd = size * np.sqrt((1 - r2) / (12 * r2))  # a line's variance over 0..1 is size²/12
        y = base + 2 * sd + size * x + rng.normal(0, sd, n)
    else:
        picks = np.unique(np.round(np.linspace(0, n - 1, min(n, 120))).astype(int))
        for _ in range(200):  # about one walk in five climbs that steadily
            y = base + size + np.cumsum(rng.normal(0, size / np.sqrt(n), n))
            if mann_kendall_z(y[picks]) > 5:
                break
    return np.maximum(0, np.round(y)).astype(np.int64)


def mann_kendall_z(y: np.ndarray) -> float:
    """Return the Mann–Kendall z of a series (no ties correction: the generator's series are
    continuous)."""
    n = len(y)
    s = float(np.triu(np.sign(y[None, :] - y[:, None]), 1).sum())
    var = n * (n - 1) * (2 * n + 5) / 18
    return (s - np.sign(s)) / np.sqrt(var) if var > 0 else 0.0


def _write_tags(out: Path, tags: dict[str, list[object]]) -> None:
    table = pa.table(
        {
            "tag_id": pa.array(tags["tag_id"], pa.int64()),
            "file": pa.array(tags["file"], pa.string()),
            "line": pa.array(tags["line"], pa.uint32()),
            "module": pa.array(tags["module"], pa.string()),
            "function": pa.array(tags["function"], pa.string()),
        }
    ).sort_by("tag_id")
    _write(table, out / "tags" / "generated.parquet")


def _write_snapshots(
    out: Path,
    config: Config,
    times: np.ndarray,
    ids: list[str],
    boots: list[str],
    epochs: list[tuple[int, int]],
    values: np.ndarray,
    calls: np.ndarray,
    present: np.ndarray,
    module_rows: np.ndarray,
) -> None:
    live = np.where(present, values, 0)
    totals = live.sum(axis=0)
    # each row's totals, as readers check them: calls summed as the signed numbers they are
    calls_totals = np.where(present, calls.astype(np.uint64).astype(np.int64), 0).sum(axis=0)
    rows_present = present.sum(axis=0)
    # one snapshots file per samples file, of the same name and partition: the pairing the
    # store's writer and compaction keep (and merge relies on)
    by_file: dict[Path, list[dict[str, object]]] = {}
    for i, taken in enumerate(times.astype(datetime)):
        taken = taken.replace(tzinfo=UTC)
        epoch = next(k for k, (lo, hi) in enumerate(epochs) if lo <= i < hi)
        lo = epochs[epoch][0]
        modules = ["dummy_reload"] if present[module_rows, i].all() else []
        by_file.setdefault(_partition(out / "snapshots", config, times, i), []).append(
            {
                "snapshot_id": ids[i],
                "name": None,
                "taken_at": taken,
                "boottime_s": 30.0 + (i - lo) * config.interval_s,
                "boot_id": boots[epoch],
                "kernel": "6.12.117-generated",
                "format": "1.0",
                "source": "procfs",
                "origin": None,
                "profiling": 1,
                "filter": "",
                "read_s": 0.004,
                "modules": [*MODULES, *modules],
                "labels": [("generator", f"seed={config.seed}")],
                "notes": [],
                "rows": int(rows_present[i]),
                "total_bytes": int(totals[i]),
                "total_calls": int(calls_totals[i]),
                "skipped_lines": 0,
                "schema_version": SCHEMA_VERSION,
                "generation": 0,
            }
        )
    for path, rows in by_file.items():
        _write(pa.Table.from_pylist(rows, schema=STORE_SNAPSHOT_SCHEMA), path)


def _partition(root: Path, config: Config, times: np.ndarray, i: int) -> Path:
    """Return the file of snapshot ``i``: its group of ``rows_per_file``, in the partition of
    the group's first snapshot."""
    lo = i - i % config.rows_per_file
    day = times[lo].astype(datetime).date().isoformat()
    return root / f"host={config.host}" / f"date={day}" / f"gen-{lo:06d}.parquet"


def _write_samples(
    out: Path,
    config: Config,
    tags: dict[str, list[object]],
    times: np.ndarray,
    ids: list[str],
    values: np.ndarray,
    calls: np.ndarray,
    present: np.ndarray,
) -> None:
    tag_ids = np.array(tags["tag_id"], dtype=np.int64)
    order = np.argsort(tag_ids, kind="stable")  # files sorted by (tag, time)
    t = len(tag_ids)
    ordinal = np.empty(t, dtype=np.uint32)
    ordinal[np.arange(t)] = np.arange(t)  # the kernel's order: the generated order
    id_array = pa.array(ids, pa.string())
    for lo in range(0, config.snapshots, config.rows_per_file):
        hi = min(lo + config.rows_per_file, config.snapshots)
        k = hi - lo
        rows = order.repeat(k)
        cols = np.tile(np.arange(lo, hi), t)
        keep = present[rows, cols]
        rows, cols = rows[keep], cols[keep]
        table = pa.table(
            {
                "snapshot_id": pa.DictionaryArray.from_arrays(
                    pa.array(cols, pa.int32()), id_array
                ).cast(pa.string()),
                "taken_at": pa.array(times[cols], pa.timestamp("us", "UTC")),
                "tag_id": pa.array(tag_ids[rows], pa.int64()),
                "occurrence": pa.array(np.zeros(len(rows), np.uint16), pa.uint16()),
                "ordinal": pa.array(ordinal[rows], pa.uint32()),
                "bytes": pa.array(values[rows, cols], pa.int64()),
                "calls": pa.array(calls[rows, cols].astype(np.uint64), pa.uint64()),
                "accurate": pa.array(np.ones(len(rows), bool), pa.bool_()),
                "extras": pa.nulls(len(rows), pa.string()),
                "generation": pa.array(np.zeros(len(rows), np.int32), pa.int32()),
            }
        )
        _write(table, _partition(out / "samples", config, times, lo), samples=True)


def _write(table: pa.Table, path: Path, *, samples: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if samples:  # the layout the recorder's compaction leaves
        compaction.write_compacted(table, tmp)
    else:
        pq.write_table(table, tmp, compression="zstd", row_group_size=1 << 20)
    tmp.rename(path)


def main() -> None:
    """Generate a store from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--tags", type=int, default=Config.tags)
    parser.add_argument("--snapshots", type=int, default=Config.snapshots)
    parser.add_argument("--seed", type=int, default=Config.seed)
    parser.add_argument("--small", action="store_true", help="the tests' configuration")
    parser.add_argument(
        "--decoys", type=int, default=0, help="at least this many of every decoy kind"
    )
    args = parser.parse_args()
    config = (
        SMALL
        if args.small
        else Config(args.tags, args.snapshots, seed=args.seed, decoys=args.decoys)
    )
    truth = generate(args.out, config)
    print(
        f"{args.out}: {config.tags} tags x {config.snapshots} snapshots, "
        f"{len(truth.leaks())} leaking tags"
    )


if __name__ == "__main__":
    main()
