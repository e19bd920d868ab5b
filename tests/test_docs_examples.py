"""Every shell example in the README and docs/guide.md, run on a fresh copy of the repository
in which every file has one mtime (as a clone leaves them), checked against what the docs say.

Examples that cannot run here (root and a profiling kernel, ssh, an S3 server, installing the
package) are listed with the reason; every other one runs, after the files its story assumes
(``day0.txt``, a store with ``before`` and ``after``) are made from the shipped captures. A new
example that is in neither list fails ``test_every_example_is_run_or_excused``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ("README.md", "docs/guide.md")
BIN = Path(sys.executable).parent  # the allocsnap of this environment
ONE_MTIME = 1_765_000_000
BOOT1 = "tests/data/real/6.12.117-allocsnap/boot-1"
ICE = {
    "day0": "tests/data/public/11_pulchart_ice_fresh_boot_sort_g_tail15_2025-06-26.txt",
    "day4": "tests/data/public/12_pulchart_ice_uptime_4days_sort_g_tail15_2025-06-30.txt",
    "day6": "tests/data/public/13_pulchart_ice_uptime_6days_sort_g_tail15_2025-07-02.txt",
}
ICE_AT = {"day0": "2025-06-26T09:00Z", "day4": "2025-06-30T09:00Z", "day6": "2025-07-02T09:00Z"}


@dataclass
class Block:
    doc: str
    number: int  # among the doc's sh/console blocks, from 1
    commands: list[str] = field(default_factory=list)
    outputs: dict[str, list[str]] = field(default_factory=dict)  # console: the output shown


def blocks() -> list[Block]:
    """Return the sh and console blocks of the docs, with their command lines."""
    found = []
    for doc in DOCS:
        lines = (ROOT / doc).read_text(encoding="utf-8").splitlines()
        number, i = 0, 0
        while i < len(lines):
            fence = re.fullmatch(r"```(sh|console)\s*", lines[i])
            i += 1
            if fence is None:
                continue
            number += 1
            block = Block(doc, number)
            command = None
            while not lines[i].startswith("```"):
                line = lines[i]
                if fence.group(1) == "console":
                    if line.startswith("$ "):
                        command = line[2:]
                        block.commands.append(command)
                        block.outputs[command] = []
                    elif command is not None:
                        block.outputs[command].append(line)
                elif line.strip() and not line.lstrip().startswith("#"):
                    block.commands.append(line)
                i += 1
            found.append(block)
    return found


def key(command: str) -> str:
    """Return a command without its trailing comment and with single spaces."""
    return " ".join(re.sub(r"\s+#\s.*$", "", command).split())


NOT_HERE = "needs root and a kernel with allocation profiling"
EXCUSED = {
    "sudo allocsnap snap --name before": NOT_HERE,
    "sudo allocsnap snap --name after": NOT_HERE,
    'sudo allocsnap snap --name before --group "$(id -gn)"': NOT_HERE,
    "./run-my-workload": "a workload of the reader's",
    "./reproducer": "a workload of the reader's",
    "sudo allocsnap loop -n 20 -- ./run-one-test.sh arg1 arg2": NOT_HERE,
    "sudo allocsnap loop -n 8 --settle 0.5s --fail-on-leak --junit loop.xml -- sh -c 'dd "
    "if=/dev/zero of=/dev/shm/leak/ci-$(cat /proc/sys/kernel/random/uuid) bs=524288 count=2 "
    "status=none'": NOT_HERE + " (its output is the 6.12 guest's, tests/vm/test_loop_vm.py)",
    "echo $?": "the exit code of the loop above, in the guest",
    "python3 -m venv .venv && .venv/bin/pip install -q . && .venv/bin/allocsnap snap --name now": (
        "installs the package and reads this machine's /proc/allocinfo"
    ),
    "python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]' && .venv/bin/pytest": (
        "installs the package and runs this very suite"
    ),
    "ssh host7 sudo cat /proc/allocinfo | allocsnap show - --by dir:2": "needs ssh to a host",
    'for h in web1 web2 web3 db1; do rsync -a --delete "$h:/var/lib/allocsnap/" "fleet/$h/"; '
    "done": "needs ssh to the hosts (the stores are made from captures instead)",
    "sudo allocsnap record --retain 2d --upload s3://allocsnap/db7 --store /var/lib/allocsnap": (
        NOT_HERE + " and an S3 server"
    ),
    "allocsnap leaks --since 7d --store s3://allocsnap/db7": "needs an S3 server (test_remote)",
    "sudo allocsnap record --retain 7d --textfile "
    "/var/lib/prometheus/node-exporter/allocsnap.prom": NOT_HERE + " (test_prometheus runs it)",
    "sudo allocsnap serve --store /var/lib/allocsnap": (
        "serves until stopped (test_prometheus runs it under a real Prometheus)"
    ),
    "ALLOCSNAP_STORE=s3://allocsnap/db7 allocsnap diff first latest": "needs an S3 server",
}


@dataclass(frozen=True)
class Expect:
    says: tuple[str, ...] = ()  # each must appear in stdout or stderr
    exit_code: int = 0


EXPECTED = {
    # README, "Try it without a profiling kernel"
    "D=tests/data/real/6.12.117-allocsnap/boot-1": Expect(),
    ".venv/bin/allocsnap diff $D/snap-2.txt $D/snap-3.txt --top 10": Expect(
        ("warning: modules loaded in between: ext4, jbd2, loop, mbcache, zram, zsmalloc",)
    ),
    ".venv/bin/allocsnap diff $D/snap-3.txt $D/snap-4.txt --by module": Expect(
        ("warning: modules unloaded in between: ext4", "UNLOADED")
    ),
    ".venv/bin/allocsnap show $D/snap-3.txt --by dir:2 --top 10": Expect(
        ("total:    153.5 MiB", "88.4%  mm\n")
    ),
    ".venv/bin/allocsnap import $D/snap-*.txt --at 2026-11-26T14:50Z --every 60s --host vm "
    "--store demo": Expect(("snap-4.txt: snapshot", "taken at 2026-11-26 14:54:00 UTC")),
    ".venv/bin/allocsnap ls --store demo": Expect(
        tuple(f"2026-11-26 14:5{m}:00  vm" for m in range(5))
    ),
    ".venv/bin/allocsnap diff first latest --store demo --top 5": Expect(
        ("total:  19.9 MiB -> 26.0 MiB", "snap-0.txt", "snap-4.txt")
    ),
    ".venv/bin/allocsnap top --store demo --top 5": Expect(("5 snapshots in 1 epoch", "MiB")),
    # README, the first example (its output is compared whole below)
    "allocsnap diff before after --top 5": Expect(),
    # guide, "Before and after a test"
    "allocsnap diff before after": Expect(("total:  116.8 MiB -> 153.5 MiB",)),
    "allocsnap diff before after --by module": Expect(("ext4",)),
    "allocsnap diff before after --format markdown > diff.md": Expect(),
    # guide, "Saved dumps and bug reports"
    "allocsnap diff day0.txt day6.txt --min-delta 1M": Expect(("ice_alloc_mapped_page",)),
    "allocsnap import day0.txt --at 2025-06-26T09:00 --host prod7 --label ticket=1234 "
    "--store leak/": Expect(("taken at 2025-06-26 09:00:00 UTC",)),
    "allocsnap import day4.txt --at 2025-06-30T09:00 --host prod7 --store leak/": Expect(),
    "allocsnap ls --store leak/": Expect(("2025-06-26 09:00:00  prod7", "2025-06-30 09:00:00")),
    "allocsnap diff first latest --store leak/": Expect(
        ("ice_alloc_mapped_page", "+1.3 GiB  ", "+130.3%")
    ),
    # guide, "Dumps from elsewhere"
    "D=tests/data/real/6.12.117-allocsnap": Expect(),
    "gzip -c $D/boot-1/snap-3.txt > snap-3.txt.gz && allocsnap show snap-3.txt.gz --top 3": Expect(
        ("total:    153.5 MiB",)
    ),
    "allocsnap import $D/boot-1 $D/boot-3 --at 2026-11-26T10:00Z --every 10m --host vm --store "
    "report/": Expect(("left out meta.json", "reboot inferred before", "boot-3/snap-0.txt")),
    "allocsnap ls --store report/": Expect(("2026-11-26 11:10:00",)),
    "allocsnap top --store report/ --top 3": Expect(("in 2 epochs",)),
    # guide, "A report to look at, or to paste"
    "allocsnap report --since 6h -o report.html": Expect(("wrote report.html",)),
    "allocsnap report --since 1d --host prod7 --format markdown > issue.md": Expect(),
    "allocsnap history ice_alloc_mapped_page --plot ice.svg": Expect(("wrote ice.svg",)),
    # guide, "Many hosts" (the stores copied from the hosts are made from captures)
    "allocsnap merge fleet/* --store fleet-all --dry-run": Expect(("web1",)),
    "allocsnap merge fleet/* --store fleet-all": Expect(("web1",)),
    "allocsnap leaks --fleet --store fleet-all": Expect(("4 hosts",)),
    "allocsnap leaks --host 'web*' --store fleet-all": Expect(),
    "allocsnap top --by host --module ice --store fleet-all": Expect(("web1", "db1")),
    "allocsnap outliers ice_alloc_mapped_page --store fleet-all": Expect(),
}


def _import(folder: Path, dump: str, at: str, host: str, store: str, *extra: str) -> None:
    run = subprocess.run(
        [str(BIN / "allocsnap"), "import", dump, "--at", at, "--host", host, "--store", store,
         *extra],
        cwd=folder, capture_output=True, text=True, env=_env(), check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr


def before_and_after(folder: Path) -> None:
    """The store the README's first example shows: snap-2 'before', snap-3 'after'."""
    _import(folder, f"{BOOT1}/snap-2.txt", "2026-11-26T14:52:35Z", "vm", "allocsnap-data",
            "--name", "before")  # fmt: skip
    _import(folder, f"{BOOT1}/snap-3.txt", "2026-11-26T14:58:02Z", "vm", "allocsnap-data",
            "--name", "after")  # fmt: skip


def ice_days(folder: Path) -> None:
    """day0.txt, day4.txt and day6.txt: the ice leak's bug report, as the guide tells it."""
    for day, path in ICE.items():
        shutil.copyfile(folder / path, folder / f"{day}.txt")


def ice_store(folder: Path) -> None:
    for day, path in ICE.items():
        _import(folder, path, ICE_AT[day], "prod7", "allocsnap-data")


def fleet(folder: Path) -> None:
    """Four hosts' stores, as rsync would copy them, each of the ice report's three days."""
    for n, host in enumerate(("web1", "web2", "web3", "db1")):
        for day, path in ICE.items():
            at = ICE_AT[day].replace("09:00", f"09:0{n}")
            _import(folder, path, at, host, f"fleet/{host}")


SETUP: dict[tuple[str, int], Callable[[Path], None]] = {
    ("README.md", 1): before_and_after,
    ("docs/guide.md", 1): before_and_after,
    ("docs/guide.md", 4): ice_days,
    ("docs/guide.md", 5): ice_days,
    ("docs/guide.md", 7): ice_store,
    ("docs/guide.md", 8): fleet,
}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLOCSNAP")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's tracked files in a fresh folder, every file with one mtime."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True
    ).stdout.decode()
    target = tmp_path_factory.mktemp("clone") / "allocsnap"
    for name in filter(None, listed.split("\0")):
        if not (ROOT / name).is_file():
            continue  # deleted in the working tree
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, target / name)
        os.utime(target / name, (ONE_MTIME, ONE_MTIME))
    for name in ("README.md", "docs/guide.md"):  # the docs as they are now, tracked or not
        shutil.copyfile(ROOT / name, target / name)
    return target


def test_every_example_is_run_or_excused() -> None:
    # GIVEN every command line of the README's and the guide's shell examples
    commands = {key(c) for b in blocks() for c in b.commands}

    # THEN each is run with an expectation or excused with a reason, and neither list is stale
    assert commands - EXPECTED.keys() - EXCUSED.keys() == set()
    assert (EXPECTED.keys() | EXCUSED.keys()) - commands == set()
    assert not EXPECTED.keys() & EXCUSED.keys()


@pytest.mark.slow  # each example starts its own processes
@pytest.mark.parametrize("block", blocks(), ids=lambda b: f"{b.doc}#{b.number}")
def test_examples_do_what_the_docs_say(block: Block, clone: Path, tmp_path: Path) -> None:
    # GIVEN a fresh copy of the clone, with what the block's story assumes
    folder = tmp_path / "allocsnap"
    shutil.copytree(clone, folder)  # copy2: the mtimes stay as one
    if (block.doc, block.number) in SETUP:
        SETUP[(block.doc, block.number)](folder)
    assigned: list[str] = []
    for command in block.commands:
        k = key(command)
        if k in EXCUSED:
            continue
        if re.fullmatch(r"\w+=\S+", k):
            assigned.append(k)
            continue
        # WHEN the command runs as the reader would type it
        line = k.replace(".venv/bin/allocsnap", "allocsnap")
        run = subprocess.run(
            ["bash", "-c", "; ".join([*assigned, line])],
            cwd=folder, capture_output=True, text=True, env=_env(), check=False, timeout=300,
        )  # fmt: skip
        said = run.stdout + run.stderr

        # THEN it exits as documented and prints what the docs say
        expect = EXPECTED[k]
        assert run.returncode == expect.exit_code, f"{command}\n{said}"
        for text in expect.says:
            assert text in said, f"{command}: {text!r} not in\n{said}"
        if block.outputs.get(command):
            assert run.stdout.rstrip("\n").splitlines() == block.outputs[command], said
