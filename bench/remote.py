"""Object storage: analyses read from s3:// against the same store on disk, and the recorder's
resident memory with and without ``--upload``.

    .venv/bin/python bench/remote.py           # a host-day store (8,640 snapshots)
    .venv/bin/python bench/remote.py --quick   # 1,080 snapshots

The S3 server is moto's (``moto_server``, a process of its own on 127.0.0.1), a Python server:
figures over it bound what pyarrow and DuckDB add, not what AWS or MinIO would take. Prints
figures only; docs/performance.md quotes them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from allocsnap import analysis
from allocsnap.analysis import query
from allocsnap.store import layout, remote
from bench.analyses import day_store
from bench.recorder import Series, _own_peak_rss, render, synthetic_tags

BUCKET = "bench"


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.1)
        from pyarrow import fs

        # from_uri reads AWS_ENDPOINT_URL (the S3FileSystem constructor does not)
        s3, _path = fs.FileSystem.from_uri(f"s3://{BUCKET}?allow_bucket_creation=true")
        s3.create_dir(BUCKET)
    except BaseException:
        proc.terminate()  # no server left behind when the bucket cannot be made
        raise
    return proc, endpoint


def copy_store(root: Path, url: str) -> None:
    """Copy a whole store (the generator's files are not named like compacted ones)."""
    from pyarrow import fs

    s3, base = fs.FileSystem.from_uri(url)
    fs.copy_files(str(root), base, destination_filesystem=s3)


def median_s(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def analyses(work: Path, quick: bool, runs: int) -> None:
    day = day_store(work, quick=quick)
    url = f"s3://{BUCKET}/day"
    copy_store(day, url)
    bucket = remote.location(url)
    metas = analysis.snapshots(day)
    a, b = metas[len(metas) // 3].snapshot_id, metas[-1].snapshot_id
    print(f"store: {len(metas):,} snapshots, {sum(m.rows for m in metas) / 1e6:.1f} M samples")
    for where, label in ((day, "local"), (bucket, "s3://")):
        diff_s = median_s(lambda w=where: analysis.diff(*analysis.load_all([a, b], w)), runs)
        leaks_s = median_s(lambda w=where: analysis.leaks(w, top_n=0), runs)
        ls_s = median_s(lambda w=where: analysis.snapshots(w), runs)
        print(f"{label:7s} diff ID ID {diff_s:.3f} s, leaks {leaks_s:.3f} s, ls {ls_s:.3f} s")
    with query.connect(layout.open_store(bucket)) as con:
        at = metas[-1].taken_at
        plan = con.sql(
            "explain select sum(bytes) from sample_files where taken_at = $at",
            params={"at": at},
        ).fetchall()
    scan = "\n".join(str(row[1]) for row in plan).split("PARQUET_SCAN", 1)[-1]
    pushed = "Projections: bytes" in scan and "taken_at =" in scan
    print(f"projection and filter pushed into DuckDB's Parquet scan of the bucket: {pushed}")


def rss(work: Path, snapshots: int, url: str) -> None:
    """The recorder's own peak and steady RSS, with and without --upload, on a store whose
    closed hours it compacts and uploads while it records."""
    dump = work / "allocinfo.txt"
    dump.write_bytes(render(synthetic_tags(), *Series().step()))
    for upload in (False, True):
        root = work / f"rss-{upload}"
        seed = [sys.executable, "-m", "allocsnap", "import", str(dump), "--store", str(root)]
        past = datetime.now(UTC) - timedelta(hours=3)
        for k in range(20):  # an earlier closed hour, hot, for the recorder to compact
            at = (past + timedelta(seconds=10 * k)).isoformat()
            subprocess.run([*seed, "--at", at], check=True, capture_output=True)
        command = [sys.executable, "-m", "allocsnap", "record", "--store", str(root)]
        command += ["--source", str(dump), "--interval", "0.01s", "--count", str(snapshots)]
        command += ["--upload", f"{url}-{snapshots}"] if upload else []
        proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        samples, peak = [], 0.0
        while proc.poll() is None:
            try:
                status = Path(f"/proc/{proc.pid}/status").read_text()
            except OSError:
                break
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    samples.append(int(line.split()[1]) / 1024)
                elif line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
            time.sleep(0.1)
        err = proc.stderr.read() if proc.stderr else ""
        steady = statistics.median(samples[len(samples) // 2 :])
        said = [x for x in err.splitlines() if "upload" in x]
        print(
            f"recorder {'with' if upload else 'without'} --upload: steady {steady:.0f} MB, "
            f"peak {peak:.0f} MB ({snapshots} snapshots){'; ' + said[0] if said else ''}"
        )
    code = (
        "from pathlib import Path; from allocsnap.store import upload, remote; "
        f"upload.upload(Path({str(work / 'rss-True')!r}), remote.Remote({url + '-child'!r}))"
    )
    print(f"one upload run in a process of its own: peak {_own_peak_rss(code):.0f} MB")
    lean = "import numpy, pyarrow.parquet, allocsnap.recorder"
    print(f"python importing numpy + pyarrow.parquet + the recorder: {_own_peak_rss(lean):.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rss-snapshots", type=int, default=1000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="allocsnap-bench-"))
    server, endpoint = start_server()
    try:
        print(f"S3: moto_server at {endpoint}; load average {os.getloadavg()[0]:.1f}")
        rss(work, args.rss_snapshots, f"s3://{BUCKET}/rss")
        analyses(work, args.quick, args.runs)
        print(f"load average at the end {os.getloadavg()[0]:.1f}")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
