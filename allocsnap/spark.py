"""The store's views, ``diff`` and ``leaks`` on Spark SQL, for fleets (docs/spark.md).

The queries are the files of ``queries/spark/``: Spark SQL ports of ``queries/view_*.sql``,
``diff.sql`` and ``leaks.sql`` with the same visibility rule, statistics and thresholds, whose
values are named parameters (``:name``) bound by Spark (``spark.sql(text, args=...)``), never
built into the text. A store is registered from Python by its URL — a local folder or any
Hadoop URL such as ``s3a://bucket/fleet`` — so no path enters SQL either.

pyspark is imported when a function here runs, and nothing imports this module but its own
entry point, so the CLI never loads Spark: ``spark-submit -m``-style use is
``python -m allocsnap.spark diff|leaks --store URL ...`` (see ``main``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.csv as pacsv

from allocsnap import analysis, filters, units
from allocsnap.analysis import query
from allocsnap.errors import AllocsnapError, ExitCode, StoreNotFound, UsageError
from allocsnap.model import Filter
from allocsnap.store import catalog

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

CONF = {
    # taken_at is an instant: read and bind it in UTC whatever the machine's zone
    "spark.sql.session.timeZone": "UTC",
    # host=007 is a name, not the number 7; date is cast back to a date by the views
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
}
"""Settings the queries rely on; ``register`` sets them on the session it is given."""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

VIEWS = ("view_a_snapshots", "view_samples", "view_tags")  # in creation order
LEAK_STAGES = (  # queries/spark/leaks_N_*.sql and the view each one's rows are kept as
    ("leaks_0_keys", "leak_keys"),
    ("leaks_1_series", "leak_tag_series"),
    ("leaks_2_points", "leak_points"),
    ("leaks_3_grown", "leak_grown"),
    ("leaks_4_series_points", "leak_whole_points"),
    ("leaks_4_change_points", "leak_change_points"),
    ("leaks_4_earlier", "leak_earlier_points"),
    ("leaks_4_extended", "leak_extended"),
    ("leaks_4_series", "leak_series"),
    ("leaks_4_judged_points", "leak_series_points"),
    ("leaks_5_shaped", "leak_shaped"),
    ("leaks_6_later", "leak_later_low"),
)


def sql(name: str) -> str:
    """Return the text of ``queries/spark/<name>.sql``."""
    path = query.queries_dir() / "spark" / f"{name}.sql"
    if not path.is_file():
        raise AllocsnapError(f"no Spark query named {name!r} in queries/spark/")
    return path.read_text(encoding="utf-8")


def session(
    master: str | None = None, conf: dict[str, str] | None = None, app_name: str = "allocsnap"
) -> SparkSession:
    """Return the active Spark session, or a new one (``master`` e.g. ``local[2]``).

    Under spark-submit the master and resources come from its options; give ``master`` (and
    ``conf``, e.g. ``spark.driver.memory``) only to run without it.
    """
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    for key, value in {**(conf or {}), **CONF}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def register(spark: SparkSession, store_url: str) -> None:
    """Create the views ``snapshots``, ``samples`` and ``tags`` over the store at ``store_url``.

    The files are listed once, here, snapshots before samples, like ``StoreFiles``: a writer
    adds samples before the snapshots row that commits them. Raise ``StoreNotFound`` when the
    URL holds no store.
    """
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions

    for key, value in CONF.items():
        spark.conf.set(key, value)
    base = store_url.rstrip("/")
    try:
        for table, view in (
            ("snapshots", "snapshot_files"),
            ("samples", "sample_files"),
            ("tags", "tag_files"),
        ):
            reader = spark.read.option("mergeSchema", "true")
            if table != "tags":
                reader = reader.option("basePath", f"{base}/{table}")
            frame = reader.parquet(f"{base}/{table}")
            if table == "samples" and "unit_bytes" not in frame.columns:
                # only compacted files of schema 3 carry it (docs/storage.md): NULL elsewhere
                frame = frame.withColumn("unit_bytes", functions.lit(None).cast("bigint"))
            frame.createOrReplaceTempView(view)
    except AnalysisException as e:
        raise StoreNotFound(
            f"no allocsnap store at {store_url}: {str(e).splitlines()[0]} "
            "(give the folder that holds snapshots/, samples/ and tags/)"
        ) from e
    for name in VIEWS:
        spark.sql(sql(name))


def declared_params(name: str) -> set[str]:
    """Return the ``:params`` a Spark query's header comment declares."""
    return query.declared_params_in(sql(name), ":")


def used_params(name: str) -> set[str]:
    """Return the ``:params`` a Spark query's body uses (comment lines left out)."""
    return query.used_params_in(sql(name), ":")


def run(spark: SparkSession, name: str, **params: Any) -> DataFrame:
    """Return the lazy result of ``queries/spark/<name>.sql`` with bound parameters.

    The parameters must be those the file declares, as DuckDB insists for ``queries/``: Spark
    reports a missing one but not an extra one, which would hide a caller that drifted.
    """
    declared = declared_params(name)
    if set(params) != declared:
        raise AllocsnapError(
            f"queries/spark/{name}.sql takes {sorted(declared)}, was given {sorted(params)}"
        )
    return spark.sql(sql(name), args=params)


def _stage(spark: SparkSession, name: str, view: str, params: dict[str, Any]) -> None:
    """Run one stage of a query in stages, keep its rows and name them ``view``.

    ``localCheckpoint`` computes the rows once and cuts the plan there: the next stage reads
    them instead of planning this stage again inside its own plan (Spark inlines every
    common table expression, so one statement of all stages plans each CTE once per use).
    """
    wanted = {k: params[k] for k in declared_params(name)}
    run(spark, name, **wanted).localCheckpoint(eager=True).createOrReplaceTempView(view)


def resolve(spark: SparkSession, ref: str) -> dict[str, Any]:
    """Return the snapshot a reference names (first, latest, a name, an id prefix or a time),
    as ``analysis.resolve`` does over DuckDB: its id, name, time, host, boot, kernel, modules
    and date."""
    for kind, text, at in catalog.attempts(ref):
        rows = run(spark, "resolve", kind=kind, ref=text, at=at).toArrow().to_pylist()
        if kind == "id" and len(rows) > 1:
            raise UsageError(f"snapshot id prefix {ref!r} is ambiguous (several match)")
        if rows:
            row: dict[str, Any] = rows[0]
            return row
    raise StoreNotFound(f"no snapshot named {ref!r} in the store")


def tag_ids(spark: SparkSession, keep: Filter) -> list[int] | None:
    """Return the ids of the tags the filter's call-site parts keep, or None when all are kept.

    The tags table is small (one row per call site of the fleet's kernels): it is read to the
    driver and filtered by ``allocsnap.filters``, the one implementation of the globs.
    """
    return filters.kept_tag_ids(keep, lambda: spark.table("tags").toArrow())


def diff(
    spark: SparkSession,
    before: str,
    after: str,
    *,
    keep: Filter | None = None,
    grouping: analysis.Grouping | None = None,
    top_n: int | None = 20,
    min_delta: int = 0,
) -> DataFrame:
    """Return the groups whose live bytes or calls changed between two stored snapshots, in the
    columns and order of ``analysis.diff`` (``changed_groups`` counts them before the cut)."""
    keep = keep or Filter()
    grouping = grouping or analysis.Grouping()
    old, new = resolve(spark, before), resolve(spark, after)
    ids = tag_ids(spark, keep)
    for view, meta in (("before_rows", old), ("after_rows", new)):
        rows = run(
            spark,
            "snapshot_rows",
            snapshot_id=meta["snapshot_id"],
            host=meta["host"],
            day=meta["date"],
            tag_ids=ids,
            accurate=keep.accurate,
        )
        rows.createOrReplaceTempView(view)
    modules = new["modules"]
    if modules is None:  # not recorded: the modules with rows in the later snapshot
        present = spark.table("after_rows").select("module").distinct().toArrow()
        modules = sorted(m for m in present["module"].to_pylist() if m is not None)
    hours = (new["taken_at"] - old["taken_at"]).total_seconds() / 3600
    return run(
        spark,
        "diff",
        by=grouping.by,
        depth=grouping.depth,
        min_delta=min_delta,
        min_size=keep.min_size,
        max_size=keep.max_size,
        nonzero=keep.nonzero,
        after_modules=list(modules),
        hours=hours if hours >= 1 else None,
        top_n=top_n or None,
    )


def leaks(
    spark: SparkSession,
    window: analysis.Window | None = None,
    *,
    keep: Filter | None = None,
    grouping: analysis.Grouping | None = None,
    settings: analysis.LeakSettings | None = None,
) -> DataFrame:
    """Return every series of the window that grew past the floors, with its verdict, in the
    columns and order of ``queries/leaks.sql`` (leaks first, steepest first)."""
    window = window or analysis.Window()
    keep = keep or Filter()
    grouping = grouping or analysis.Grouping()
    settings = settings or analysis.LeakSettings()
    if settings.max_points is None or settings.max_points < 2:
        raise UsageError("--max-points must be at least 2 on Spark (every point is not offered)")
    bounds = window.params()
    run(spark, "window_snapshots", **bounds).createOrReplaceTempView("window_snapshots")
    # the same hosts' whole store: the rest of each epoch's boot after it in the window
    whole = {k: (v if k == "host" else None) for k, v in bounds.items()}
    run(spark, "window_snapshots", **whole).createOrReplaceTempView("store_snapshots")
    # the look-back before a window that starts after its epochs (without --since, a start past
    # every snapshot: none): up to the window's start, and from there on, which names the epoch
    # of the window's first snapshot as the look-back does
    start = _look_back_from(spark, settings.look_back) if window.since is not None else None
    look = {**whole, "since_at": start or datetime.max.replace(tzinfo=UTC)}
    up_to_window = {**look, "until_at": bounds["since_at"], "until_back": bounds["since_back"]}
    run(spark, "window_snapshots", **up_to_window).createOrReplaceTempView("earlier_snapshots")
    run(spark, "window_snapshots", **look).createOrReplaceTempView("lookback_snapshots")
    for source, view in (
        ("window", "leak_picked"),
        ("store", "leak_later_picked"),
        ("earlier", "leak_earlier_picked"),
    ):
        _stage(
            spark,
            "leaks_0_picked",
            view,
            {
                "max_points": settings.max_points,
                "source": source,
                "min_growth": settings.min_growth,
                "min_rate": settings.min_rate,
            },
        )
    params: dict[str, Any] = {
        "tag_ids": tag_ids(spark, keep),
        "accurate": keep.accurate,
        "by": grouping.by,
        "depth": grouping.depth,
        "min_size": keep.min_size,
        "max_size": keep.max_size,
        "nonzero": keep.nonzero,
        "max_points": settings.max_points,
        "blocks": settings.blocks,
        "min_points": settings.min_points,
        "min_growth": settings.min_growth,
        "min_rate": settings.min_rate,
        "min_confidence": settings.min_confidence,
        "min_up_share": settings.min_up_share,
        "max_drawdown": settings.max_drawdown,
        "max_kpss": settings.max_kpss,
        "max_wander_fall": settings.max_wander_fall,
        "min_steps": settings.min_steps,
        "min_late_share": settings.min_late_share,
        "min_jump_share": settings.min_jump_share,
        "max_step_lag1": settings.max_step_lag1,
        "min_step_skew_z": settings.min_step_skew_z,
        "short_hours": settings.short_hours,
        "since_given": window.since is not None,
    }
    for name, view in LEAK_STAGES:
        _stage(spark, name, view, params)
    return run(spark, "leaks", **{k: params[k] for k in declared_params("leaks")})


def _look_back_from(spark: SparkSession, look_back: float) -> datetime | None:
    """Return how far back before the window ``leaks`` reads for a staircase of few steps:
    ``look_back`` times the window's span of counting snapshots (queries/leaks.sql: look_back).
    """
    row = spark.sql(
        "select unix_micros(min(taken_at)) as first_us, unix_micros(max(taken_at)) as last_us "
        "from window_snapshots where counting"
    ).first()
    if row is None or row["first_us"] is None:
        return None
    first, last = row["first_us"], row["last_us"]
    return EPOCH + timedelta(microseconds=round(first - look_back * (last - first)))


# -- python -m allocsnap.spark ----------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m allocsnap.spark",
        description="allocsnap's diff and leaks on Spark SQL over a store (docs/spark.md).",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", required=True, help="store URL: a folder, s3a://…, hdfs://…")
    common.add_argument("--by", default="tag", help="tag | function | file | module | dir[:N]")
    common.add_argument("--module", help="module glob; 'built-in' for built-in code")
    common.add_argument("--function", help="function glob")
    common.add_argument("--file", help="source file glob")
    common.add_argument("--min-size", help="smallest live bytes kept, e.g. 1M")
    common.add_argument("--max-size", help="largest live bytes kept")
    common.add_argument("--nonzero", action="store_true", help="drop all-zero groups")
    common.add_argument("--top", type=int, default=0, help="rows shown; 0 (default) for all")
    common.add_argument("--output", help="write the rows as Parquet to this URL, not stdout")
    common.add_argument("--master", help="Spark master when run without spark-submit")
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("diff", parents=[common], help="what changed between two snapshots")
    d.add_argument("before", help="first, latest, a name, an id prefix or a time")
    d.add_argument("after")
    d.add_argument("--min-delta", default="0", help="smallest |Δbytes| shown, e.g. 64K")
    w = sub.add_parser("leaks", parents=[common], help="call sites that grow persistently")
    w.add_argument("--since", help="a time, or a duration back from the newest snapshot")
    w.add_argument("--until")
    w.add_argument("--host", help="one host; all by default")
    w.add_argument("--all", action="store_true", help="also the series judged not a leak")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``diff`` or ``leaks`` from the command line; return the exit code.

    Rows go to stdout as CSV, or to ``--output`` as Parquet (the way to keep a fleet-wide
    result); messages go to stderr.
    """
    args = _parser().parse_args(argv)
    try:
        keep = Filter(
            module=args.module,
            function=args.function,
            file=args.file,
            min_size=units.parse_size(args.min_size) if args.min_size else None,
            max_size=units.parse_size(args.max_size) if args.max_size else None,
            nonzero=args.nonzero,
        )
        grouping = analysis.Grouping.parse(args.by)
        spark = session(args.master)
        register(spark, args.store)
        if args.command == "diff":
            rows = diff(
                spark,
                args.before,
                args.after,
                keep=keep,
                grouping=grouping,
                top_n=args.top or None,
                min_delta=units.parse_size(args.min_delta),
            ).drop("changed_groups")
        else:
            window = analysis.Window(since=args.since, until=args.until, host=args.host)
            rows = leaks(spark, window, keep=keep, grouping=grouping)
            if not args.all:
                rows = rows.where(rows["verdict"] == "leak")
            if args.top:
                rows = rows.limit(args.top)
        if args.output:
            rows.write.mode("errorifexists").parquet(args.output)
            print(f"wrote {args.output}", file=sys.stderr)
        else:
            _write_csv(rows.toArrow())
    except AllocsnapError as e:
        print(f"error: {e}", file=sys.stderr)
        return int(e.exit_code)
    return int(ExitCode.OK)


def _write_csv(table: pa.Table) -> None:
    pacsv.write_csv(table, sys.stdout.buffer)
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    sys.exit(main())
