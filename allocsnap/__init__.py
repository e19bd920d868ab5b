"""allocsnap: record /proc/allocinfo snapshots as Parquet; find changes, leaks and growth."""

__version__ = "0.1.0"
__all__ = ["__version__"]
