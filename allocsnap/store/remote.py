"""Object storage: a store at ``s3://bucket/prefix``, through pyarrow's S3 file system.

Credentials and the endpoint come the standard way: ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY`` (or ``~/.aws``), ``AWS_ENDPOINT_URL`` or ``AWS_REGION``, or the URL's
own query, as ``pyarrow.fs.FileSystem.from_uri`` reads it
(``s3://bucket/prefix?endpoint_override=127.0.0.1:9000&scheme=http``). pyarrow's S3 support is
loaded when a remote store is first opened, never by an import of this module (docs/guide.md).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from allocsnap.errors import AllocsnapError, StoreError, StoreNotFound, UsageError

TYPE_CHECKING = False  # typing and dataclasses stay out of ls's one-shot path
if TYPE_CHECKING:
    from typing import Any

SCHEME = "s3://"
# AWS errors as pyarrow words them: "AWS Error NO_SUCH_BUCKET during ListObjectsV2 operation: …"
_AWS_ERROR = re.compile(r"AWS Error (\w+) during (\w+) operation: ?(.*)")
_CREDENTIALS = {
    "ACCESS_DENIED",
    "INVALID_ACCESS_KEY_ID",
    "SIGNATURE_DOES_NOT_MATCH",
    "MISSING_AUTHENTICATION_TOKEN",
    "UNRECOGNIZED_CLIENT",
    "INVALID_CLIENT_TOKEN_ID",
    "EXPIRED_TOKEN",
}


class Remote:
    """A store in object storage, named by its URL; ``str()`` leaves any secret out."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Remote) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    def __repr__(self) -> str:
        return f"Remote({str(self)!r})"  # the secret left out, as str() does

    def __str__(self) -> str:
        parts = urlsplit(self.url)
        host = parts.netloc.rsplit("@", 1)[-1]  # s3://key:secret@bucket/… names the bucket only
        return urlunsplit((parts.scheme, host, parts.path, "", ""))

    @property
    def bucket(self) -> str:
        return urlsplit(self.url).netloc.rsplit("@", 1)[-1]


Location = Path | Remote
"""Where a store is: a local directory, or a ``Remote`` store (read-only; uploads go there)."""


def location(text: str | os.PathLike[str] | Location) -> Location:
    """Return the store a ``--store`` value names: ``s3://bucket/prefix`` or a directory."""
    if isinstance(text, Path | Remote):
        return text
    value = os.fspath(text)
    if value.startswith(SCHEME):
        if not urlsplit(value).netloc:
            raise UsageError(f"{value!r} names no bucket: use s3://bucket/prefix")
        return Remote(value)
    if re.match(r"^[a-z][a-z0-9+.-]*://", value):
        raise UsageError(f"{value!r}: only s3:// stores are supported, or a local directory")
    return Path(value)


def local(where: Location, doing: str) -> Path:
    """Return a local store's directory; refuse a remote one for a command that writes."""
    if isinstance(where, Remote):
        raise UsageError(
            f"{where} is read-only for allocsnap: {doing} into a local --store, and upload "
            f"closed hours with 'allocsnap record --upload {where}' or "
            f"'allocsnap upload --to {where}'"
        )
    return where


def filesystem(where: Remote) -> tuple[Any, str]:
    """Return pyarrow's S3 file system for a remote store, and the store's path in it."""
    from pyarrow import fs

    try:
        s3, path = fs.FileSystem.from_uri(where.url)
    except (OSError, ValueError) as e:
        raise StoreError(f"cannot open {where}: {why(e)}") from e
    return s3, path.rstrip("/")


def error(where: Remote, e: OSError, doing: str = "read") -> AllocsnapError:
    """Return the one-line error for a failed S3 request: what failed, and what to check."""
    text = why(e)
    match = _AWS_ERROR.search(str(e))
    code = match.group(1) if match else ""
    if code == "NO_SUCH_BUCKET":
        return StoreNotFound(f"cannot {doing} {where}: bucket {where.bucket!r} does not exist")
    if code in _CREDENTIALS:
        hint = "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or ~/.aws/credentials)"
    elif code == "NETWORK_CONNECTION" or "curlCode" in text:
        hint = "check the endpoint (AWS_ENDPOINT_URL, or ?endpoint_override=HOST:PORT&scheme=http)"
    else:
        hint = ""
    return StoreError(f"cannot {doing} {where}: {text}" + (f"; {hint}" if hint else ""))


def why(e: BaseException) -> str:
    """Return the useful part of pyarrow's message for an S3 failure, on one line."""
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    match = _AWS_ERROR.search(text)
    if match is None:
        return text
    code, message = match.group(1), match.group(3)
    message = re.sub(r"\s*\(Request ID: [^)]*\)", "", message)
    message = re.sub(r";?\s*Details:.*$", "", message)
    return f"{code}: {message}".rstrip(": ")
