"""Audit-log calls that `Client` mixes in: export the log (or the entries you audit) to a file, and verify an export
offline.

An export is streamed to disk as it arrives, so memory stays flat however long the log; it is written beside its
destination and renamed into place only once complete, so a dropped connection never leaves a file that looks like
a whole export. A connection dropped or refused mid-export, or a 502/503/504 from a proxy whose upstream went away,
starts the export again from its first byte (it is a GET, and an export up to a fixed signed head), with the
client's retries and backoff. Verifying reads nothing from the server: it is `provenant_client.audit_verify`, which
needs the `audit` extra (`cryptography`) and trusts only the public key it is given.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Union

import httpx

from provenant_client.errors import ServerError, error_from_response
from provenant_client.transfers import RETRY_STATUSES

if TYPE_CHECKING:
    from provenant_client.audit_verify import FilteredReport, Report

__all__ = ["AuditCalls"]

#: A public key as `audit_verify` takes it: 32 raw bytes, base64 text, a PEM block, or a file holding one.
PublicKey = Union[bytes, str, "os.PathLike[str]"]
BLOCK_SIZE = 1024 * 1024


class AuditCalls:
    """Calls that `Client` mixes in; they need its `http` client and `get`."""

    if TYPE_CHECKING:
        http: httpx.Client
        server: str
        retries: int

        def get(self, path: str, **params: Any) -> Any: ...

        def _pause(self, attempt: int) -> None: ...

    def audit_public_key(self) -> dict[str, Any]:
        """The key the server signs tree heads with: `{"key_id", "public_key" (base64), "pem", "algorithm"}`.
        Asked of the server whose export it would check, so keep a copy from elsewhere (README, "Audit log")."""
        return self.get("/audit/public-key/")

    def audit_export(self, dest: str | os.PathLike[str], **filters: Any) -> Path:
        """Stream an export into the file `dest` and return its path.

        Without filters, the whole log with every signed tree head (`GET /audit/export/`: needs the
        `core.view_auditentry` permission). With filters (`project="fraud-detection"`, `action=`, `actor=`,
        `since=`, `until=`, `object_type=`, `object_id=`, `artifact=`), the entries you may read that match, each
        with its inclusion proof (`GET /audit/entries/export/`: auditors of a project or an artifact).
        """
        target = Path(dest)
        path = "/audit/entries/export/" if filters else "/audit/export/"
        params = {name: value for name, value in filters.items() if value is not None}
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
        attempt = 0
        try:
            with os.fdopen(descriptor, "wb") as file:
                while True:
                    file.seek(0)
                    file.truncate()
                    try:
                        self._export_into(file, path, params, last_attempt=attempt >= self.retries)
                        break
                    except (httpx.TransportError, _Retry) as error:
                        if attempt >= self.retries:
                            raise ServerError(
                                f"GET {path}: the export was cut off {attempt + 1} times by {self.server} "
                                f"({error!r}); try again later.",
                                code="unreachable",
                            ) from error
                        attempt += 1
                        self._pause(attempt)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return target

    def _export_into(self, file: Any, path: str, params: dict[str, Any], *, last_attempt: bool) -> None:
        with self.http.stream("GET", path, params=params, headers={"Accept": "*/*"}) as response:
            if response.status_code in RETRY_STATUSES and not last_attempt:
                raise _Retry(f"{response.status_code} {response.reason_phrase}")
            if response.status_code >= 400:
                response.read()
                raise error_from_response(response)
            last = b"\n"
            for block in response.iter_bytes(BLOCK_SIZE):
                file.write(block)
                last = block[-1:] or last
            # Every line of an export ends with a newline. A server that streams until it closes the connection
            # (no length, no chunks) ends a cut-off export as if it were whole: its last line, cut, shows it.
            if last != b"\n":
                raise _Retry("the export ended in the middle of a line: the connection was cut")

    def audit_verify(
        self,
        path: str | os.PathLike[str],
        *,
        public_key: PublicKey | Iterable[PublicKey] | None = None,
        tree_heads: Iterable[dict[str, Any]] = (),
    ) -> Report | FilteredReport:
        """Verify an export offline (nothing is asked of the server); see `provenant_client.audit_verify`.

        `public_key` is the key you trust (bytes, base64 or PEM text, or a file); without it the keys the export
        names are trusted and the report warns. Raises `VerificationFailed` naming the first bad sequence number.
        """
        return verify_file(path, public_key=public_key, tree_heads=tree_heads)


class _Retry(Exception):
    """An answer that says "not now" (RETRY_STATUSES): the export is asked for again."""


def verifier() -> ModuleType:
    """`provenant_client.audit_verify`, imported when first needed: it needs `cryptography`, an optional extra,
    and a client that only pushes and pulls must import without it."""
    try:
        return importlib.import_module("provenant_client.audit_verify")
    except ImportError as error:
        raise ImportError(
            f"Verifying an audit export needs the client's 'audit' extra ({error}): "
            "pip install 'provenant-client[audit]'"
        ) from error


def _public_keys(public_key: PublicKey | Iterable[PublicKey] | None) -> Iterator[bytes]:
    load_public_key = verifier().load_public_key
    if public_key is None:
        return
    given = [public_key] if isinstance(public_key, (bytes, str, os.PathLike)) else list(public_key)
    for key in given:
        if isinstance(key, bytes) and len(key) == 32:
            yield key
        elif isinstance(key, bytes):
            yield load_public_key(key.decode())
        elif isinstance(key, os.PathLike) or (isinstance(key, str) and Path(key).is_file()):
            yield load_public_key(Path(key).read_text())
        else:
            yield load_public_key(str(key))


def verify_file(
    path: str | os.PathLike[str],
    *,
    public_key: PublicKey | Iterable[PublicKey] | None = None,
    tree_heads: Iterable[dict[str, Any]] = (),
) -> Report | FilteredReport:
    """`Client.audit_verify` without a client: an auditor's machine needs no server to check an export."""
    return verifier().verify(Path(path), list(_public_keys(public_key)) or None, tree_heads)
