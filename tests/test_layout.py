"""The package's layout says its architecture: every module and subpackage of allocsnap is named
in import-linter's contracts (pyproject.toml), so none can slip past the layer checks."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "allocsnap"


def contracts() -> dict[str, dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {c["name"]: c for c in config["tool"]["importlinter"]["contracts"]}


def layer_names(contract: dict[str, Any]) -> set[str]:
    layers = contract["layers"]
    assert isinstance(layers, list)
    return {name.strip() for layer in layers for name in layer.split("|")}


def children(folder: Path) -> set[str]:
    """Return the modules and subpackages directly in ``folder``, not its __init__, __main__."""
    names = {p.stem for p in folder.glob("*.py") if p.stem not in ("__init__", "__main__")}
    return names | {p.name for p in folder.iterdir() if (p / "__init__.py").is_file()}


def test_every_top_level_module_and_package_has_a_layer() -> None:
    # GIVEN the top-level layers contract
    named = layer_names(contracts()["layers"])

    # THEN it names exactly what allocsnap/ holds
    assert named == {f"allocsnap.{name}" for name in children(PACKAGE)}


def test_every_module_of_each_subpackage_has_a_layer_in_it() -> None:
    # GIVEN the contracts whose container is a subpackage
    by_container = {c["containers"][0]: c for c in contracts().values() if c.get("containers")}

    # THEN each subpackage with layers inside has a contract naming each of its modules
    for package in ("kernel", "store", "analysis", "present"):
        contract = by_container[f"allocsnap.{package}"]
        assert layer_names(contract) == children(PACKAGE / package), package


def test_library_packages_are_kept_from_typer_and_pyspark() -> None:
    # GIVEN the forbidden-import contracts
    everything = {f"allocsnap.{name}" for name in children(PACKAGE)}
    named = contracts()
    typer_free = set(named["typer and rich stay in the CLI"]["source_modules"])
    spark_free = set(
        named["pyspark only in spark, which nothing imports: the CLI never starts a JVM"][
            "source_modules"
        ]
    )

    # THEN all but the CLI are kept from typer, and all but spark from pyspark
    assert typer_free == everything - {"allocsnap.cli"}
    assert spark_free == everything - {"allocsnap.spark"}
