"""What ``diff`` says about the two snapshots it compares, from their metadata: one wording for
the three paths that compare (analysis/compare.py, and allocsnap/oneshot for dumps and for
store references), none of which may import more than this for it (no typing, no
dataclasses: the one-shot path of dumps stays without them, present/render.py)."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Collection
    from datetime import datetime
    from typing import Protocol

    class Described(Protocol):
        """What these sentences read of a snapshot: ``SnapshotMeta``, or a dump's stand-in."""

        @property
        def snapshot_id(self) -> str: ...
        @property
        def taken_at(self) -> datetime: ...
        @property
        def host(self) -> str: ...
        @property
        def boot_id(self) -> str | None: ...
        @property
        def kernel(self) -> str | None: ...
        @property
        def source(self) -> str: ...
        @property
        def profiling(self) -> int | None: ...


def comparability(
    before: Described, after: Described, counted_nothing: tuple[bool, bool]
) -> list[str]:
    """Return what ``diff`` says whatever the output format about two snapshots, their filters
    aside (``analysis.comparable``): one snapshot twice, profiling off, or a side that counted
    nothing (every counter 0: ``counted_nothing`` of each)."""
    said = []
    if before.snapshot_id == after.snapshot_id and before.host == after.host:
        said.append(
            f"both sides are the same snapshot ({before.snapshot_id}): there is nothing to compare"
        )
    for label, meta, nothing in (
        ("earlier", before, counted_nothing[0]),
        ("later", after, counted_nothing[1]),
    ):
        if meta.profiling == 0:
            said.append(
                f"profiling was off (vm.mem_profiling=0) at the {label} snapshot: counters frozen"
            )
        elif nothing:
            said.append(
                f"the {label} snapshot ({meta.snapshot_id}) counted nothing: every counter "
                "is 0 (taken with profiling off, vm.mem_profiling=0 or never)"
            )
    return said


def epoch_warnings(
    before: Described, after: Described, modules: tuple[Collection[str], Collection[str]]
) -> list[str]:
    """Return why two snapshots' counters may not be comparable, one sentence each, given the
    modules loaded at each (``analysis.epoch_warnings`` says where they come from)."""
    warnings = []
    if before.host != after.host:
        warnings.append(f"different hosts: {before.host} and {after.host}")
    if before.boot_id and after.boot_id and before.boot_id != after.boot_id:
        warnings.append(
            "different boots (boot_id changed): counters restarted from zero in between"
        )
    elif before.kernel and after.kernel and before.kernel != after.kernel:
        warnings.append(f"different kernels: {before.kernel} and {after.kernel}")
    if (before.source == "ioctl") != (after.source == "ioctl"):
        sources = " and ".join(_source_text(m) for m in (before, after))
        warnings.append(
            f"different sources: {sources} (the same counters, read two ways; "
            "the ioctl leaves out rows the kernel filtered)"
        )
    if before.profiling == 0 and after.profiling == 1:
        warnings.append("profiling was switched on in between: counts start from that moment")
    modules_before, modules_after = set(modules[0]), set(modules[1])
    if modules_before != modules_after:
        loaded = sorted(modules_after - modules_before)
        unloaded = sorted(modules_before - modules_after)
        if loaded:
            warnings.append(f"modules loaded in between: {', '.join(loaded)}")
        if unloaded:
            warnings.append(
                f"modules unloaded in between: {', '.join(unloaded)} (their rows vanished; "
                "a vanished row is not a free)"
            )
    if after.taken_at < before.taken_at:
        warnings.append("the 'after' snapshot is older than the 'before' one")
    return warnings


def _source_text(meta: Described) -> str:
    return "the ioctl" if meta.source == "ioctl" else f"text ({meta.source})"
