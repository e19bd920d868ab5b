"""Generate a fleet store where half the hosts run 6.12.117 and half 7.3.4, with regressions
planted in a few call sites: the ground truth of ``allocsnap compare-kernels``.

Each host has one snapshot. A 6.12 host's rows are the real 6.12 capture after the tmpfs
workload (tests/data/real/6.12.117-allocsnap/boot-1/snap-1.txt); a 7.3 host's are the real
7.3 capture after the same workload (boot-2/snap-1.txt), except that every 7.3 site which the
exact source map (tests/data/kernel-map) pairs with a 6.12 site takes that site's bytes and
calls: without a planted regression the two kernels then differ only by host-to-host
variation. Every host multiplies each site's bytes by its own log-normal factor (``--spread``);
``--regressions`` paired sites, drawn among those of at least 64 KiB, get ``--factor`` times
their bytes on the 7.3 hosts. The pairing here reads the map file itself, not through
allocsnap's code.

Usage: python bench/kernel_fleet.py OUT [--hosts 40] [--regressions 3] [--seed 19]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from allocsnap.kernel import capture, source  # noqa: E402
from allocsnap.model import Snapshot  # noqa: E402
from allocsnap.store import writing  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
OLD = ("6.12.117-allocsnap", DATA / "real/6.12.117-allocsnap/boot-1/snap-1.txt")
NEW = ("7.3.4-allocsnap", DATA / "real/7.3.4-allocsnap/boot-2/snap-1.txt")
MAP = DATA / "kernel-map/6.12.117-to-7.3.4.tsv"

Key = tuple[str | None, str, str, int]  # module, file, function, line


@dataclass(frozen=True)
class Truth:
    """What was planted: the 7.3 call sites (as ``call_site`` writes them) that regressed."""

    regressed: tuple[str, ...]
    factor: float
    hosts_old: tuple[str, ...]
    hosts_new: tuple[str, ...]


def _keys(rows: pa.Table) -> list[Key]:
    columns = [rows[c].to_pylist() for c in ("module", "file", "function", "line")]
    return list(zip(*columns, strict=True))


def _text(key: Key) -> str:
    module, file, function, line = key
    return f"{file}:{line}{f' [{module}]' if module else ''} func:{function}"


def _pairs(old: list[Key], new: list[Key]) -> dict[Key, Key]:
    """Return the 7.3 site of each 6.12 site the map pairs: same module, file, function, and
    the map's later line."""
    mapped = {}
    for row in MAP.read_text().splitlines()[1:]:
        file, line, later, _kind = row.split("\t")
        if later:
            mapped[(file, int(line))] = int(later)
    later_sites = set(new)
    found = {}
    for module, file, function, line in set(old):
        target = (module, file, function, mapped.get((file, line), -1))
        if target in later_sites:
            found[target] = (module, file, function, line)
    return found  # 7.3 site -> 6.12 site


def generate(
    out: Path,
    *,
    hosts: int = 40,
    regressions: int = 3,
    factor: float = 1.5,
    spread: float = 0.1,
    seed: int = 19,
) -> Truth:
    """Write the fleet store to ``out`` and return what was planted."""
    rng = np.random.default_rng(seed)
    old_snap = capture.snapshot(source.read_dump(str(OLD[1])))
    new_snap = capture.snapshot(source.read_dump(str(NEW[1])))
    old_keys, new_keys = _keys(old_snap.samples), _keys(new_snap.samples)
    pairs = _pairs(old_keys, new_keys)
    old_bytes: dict[Key, int] = {}
    old_calls: dict[Key, int] = {}
    for key, b, c in zip(
        old_keys,
        old_snap.samples["bytes"].to_pylist(),
        old_snap.samples["calls"].to_pylist(),
        strict=True,
    ):
        old_bytes[key] = old_bytes.get(key, 0) + b
        old_calls[key] = old_calls.get(key, 0) + c
    rows_per_new = {k: new_keys.count(k) for k in set(new_keys)}
    candidates = sorted((k for k, o in pairs.items() if old_bytes[o] >= 64 << 10), key=_text)
    planted = [candidates[i] for i in sorted(rng.choice(len(candidates), regressions, False))]
    # the 7.3 rows' base values: the paired 6.12 site's (split over duplicate rows), else own
    base_bytes, base_calls = [], []
    for key, b, c in zip(
        new_keys,
        new_snap.samples["bytes"].to_pylist(),
        new_snap.samples["calls"].to_pylist(),
        strict=True,
    ):
        if key in pairs:
            b = old_bytes[pairs[key]] // rows_per_new[key]
            c = old_calls[pairs[key]] // rows_per_new[key]
        if key in planted:
            b, c = round(b * factor), round(c * factor)
        base_bytes.append(b)
        base_calls.append(c)
    at = datetime(2026, 12, 1, tzinfo=UTC)
    names_old, names_new = [], []
    for i in range(hosts):
        on_new = i % 2 == 1
        host = f"{'new' if on_new else 'old'}{i // 2:02d}"
        (names_new if on_new else names_old).append(host)
        snap = new_snap if on_new else old_snap
        kernel = NEW[0] if on_new else OLD[0]
        b0 = np.array(base_bytes if on_new else old_snap.samples["bytes"].to_pylist(), float)
        c0 = np.array(base_calls if on_new else old_snap.samples["calls"].to_pylist(), float)
        noise = rng.lognormal(0.0, spread, len(b0))
        samples = snap.samples
        samples = samples.set_column(
            samples.schema.get_field_index("bytes"),
            "bytes",
            pa.array(np.round(b0 * noise).astype(np.int64), pa.int64()),
        )
        samples = samples.set_column(
            samples.schema.get_field_index("calls"),
            "calls",
            pa.array(np.round(c0 * noise).astype(np.uint64), pa.uint64()),
        )
        ident = hashlib.blake2b(f"{host}{kernel}".encode(), digest_size=6).hexdigest()
        meta = snap.meta._replace(
            snapshot_id=ident,
            host=host,
            kernel=kernel,
            taken_at=at + timedelta(minutes=i),
            origin=None,
        )
        writing.write(out, Snapshot(meta=capture.with_totals(meta, samples), samples=samples))
    return Truth(
        regressed=tuple(_text(k) for k in planted),
        factor=factor,
        hosts_old=tuple(names_old),
        hosts_new=tuple(names_new),
    )


def main() -> None:
    """Generate the store and print the planted regressions."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--hosts", type=int, default=40)
    parser.add_argument("--regressions", type=int, default=3)
    parser.add_argument("--factor", type=float, default=1.5)
    parser.add_argument("--spread", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args()
    truth = generate(
        args.out,
        hosts=args.hosts,
        regressions=args.regressions,
        factor=args.factor,
        spread=args.spread,
        seed=args.seed,
    )
    print(f"{len(truth.hosts_old)} hosts on {OLD[0]}, {len(truth.hosts_new)} on {NEW[0]}")
    for site in truth.regressed:
        print(f"planted x{truth.factor}: {site}")


if __name__ == "__main__":
    main()
