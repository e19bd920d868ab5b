"""Build the sdist and a wheel from it, install the wheel into a fresh venv, run its CLI.

No network: the venv borrows this environment's dependencies through a ``.pth`` file, and
the wheel is installed with ``--no-deps``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from allocsnap.cli import app
from tests.conftest import DATA, GOLDEN

pytestmark = [pytest.mark.packaging, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
BOOT1 = "real/6.12.117-allocsnap/boot-1"


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ALLOCSNAP_STORE", "PYTHONPATH")}
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"{args}: {result.stderr}"
    return result


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m build --no-isolation``: an sdist, then a wheel built from that sdist."""
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT)
    return out


@pytest.fixture(scope="module")
def venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv with only the wheel installed, borrowing this env's dependencies."""
    root = tmp_path_factory.mktemp("venv")
    run(sys.executable, "-m", "venv", "--without-pip", root)
    python = root / "bin" / "python"
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").stdout
    (Path(purelib.strip()) / "borrowed-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    [wheel] = dist.glob("*.whl")
    run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", wheel)
    yield root


def test_sdist_keeps_queries_at_its_root(dist: Path) -> None:
    import tarfile

    # GIVEN the sdist, THEN queries/ is at its root beside allocsnap/
    [sdist] = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {str(p.relative_to(ROOT)) for p in (ROOT / "queries").rglob("*.sql")} <= names
    assert "allocsnap/cli/__init__.py" in names and "pyproject.toml" in names


def test_wheel_contains_the_queries_unchanged(dist: Path) -> None:
    # GIVEN the wheel built from the sdist
    [wheel] = dist.glob("*.whl")

    # WHEN its allocsnap/queries/**/*.sql are read (queries/spark/ included)
    with zipfile.ZipFile(wheel) as z:
        shipped = {
            n.removeprefix("allocsnap/queries/"): z.read(n)
            for n in z.namelist()
            if n.startswith("allocsnap/queries/") and n.endswith(".sql")
        }

    # THEN they are exactly the files of queries/
    expected = {
        str(p.relative_to(ROOT / "queries")): p.read_bytes()
        for p in (ROOT / "queries").rglob("*.sql")
    }
    assert shipped == expected
    assert shipped


def test_installed_cli_matches_source_tree(venv: Path, tmp_path: Path) -> None:
    # GIVEN the installed package imports from the venv, not from this checkout
    python = venv / "bin" / "python"
    code = "import allocsnap.analysis.query as q; print(q.__file__, q.queries_dir())"
    where = run(python, "-c", code, cwd=tmp_path)
    module_file, queries = where.stdout.split()
    assert module_file.startswith(str(venv)) and queries.startswith(str(venv))

    # WHEN the installed CLI imports two captures with fixed times and diffs them
    cli = venv / "bin" / "allocsnap"
    store = tmp_path / "store"
    for index, hour in ((2, "14"), (3, "15")):
        run(cli, "import", f"{BOOT1}/snap-{index}.txt", "--store", store,
            "--at", f"2026-01-01T{hour}:30:00Z", "--host", "qemu", "--name", f"s{index}",
            cwd=DATA)  # fmt: skip
    table = run(cli, "diff", "s2", "s3", "--store", store, "-n", "12", cwd=DATA).stdout

    # THEN the table is the reviewed golden file the source tree's CLI also produces
    assert table == (GOLDEN / "diff-boot1-2-3.txt").read_text(encoding="utf-8")

    # AND a CSV diff of two dumps equals the source tree's, byte for byte
    b, a = DATA / BOOT1 / "snap-3.txt", DATA / BOOT1 / "snap-4.txt"
    installed = run(cli, "diff", b, a, "--by", "module", "-f", "csv").stdout
    source_tree = CliRunner().invoke(app, ["diff", str(b), str(a), "--by", "module", "-f", "csv"])
    assert source_tree.exit_code == 0
    assert installed == source_tree.stdout
    assert installed.count("\n") > 2
