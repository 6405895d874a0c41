"""The local side of moving bytes: digests, the content-addressed cache, and the state that lets an upload resume.

Nothing here speaks HTTP; `client.py` does, and calls these. Every file is read and written in blocks, so memory
stays flat whatever the size of a model.

Layout of the cache folder (`config.cache_dir()`), like the Hugging Face cache's `blobs/`:

    blobs/sha256/<hex>        bytes whose SHA-256 is <hex>, read-only; written only after they were checked
    blobs/incoming/           downloads in progress, renamed into blobs/sha256/ once they hash right
    uploads/<key>.json        an upload session in progress: which server, project and digest (or file), its URL
    files/<key>.json          the digest a pushed file had, with the file's identity then (a hint: see uploads)
    versions/<server>/<id>.json   an artifact version's record (versions are immutable, so it never goes stale)
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Optional

#: Reads and writes go in blocks this size: big enough for hashlib and the socket to run at full speed.
BLOCK_SIZE = 1024 * 1024
DIGEST_PATTERN = re.compile(r"^(?:sha256:)?([0-9a-f]{64})$", re.IGNORECASE)
REPR_DIGEST_PATTERN = re.compile(r"sha-256=:([A-Za-z0-9+/=]+):")
#: An upload state file older than this is stale: the server's upload sessions expire after a day by default (its
#: PROVENANT_UPLOAD_SESSION_TTL_SECONDS; a week leaves room for a longer one), so its session is gone.
STALE_UPLOAD_SECONDS = 7 * 24 * 3600
#: Statuses that say "not now" rather than "not this": retried.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Told the bytes transferred so far and the total (None when unknown), after each block: for a progress bar.
Progress = Callable[[int, Optional[int]], None]


def normalize_digest(digest: str) -> str:
    """`sha256:<hex>` in lower case, from a digest with or without its prefix; ValueError for anything else."""
    match = DIGEST_PATTERN.match(digest.strip())
    if match is None:
        raise ValueError(f"{digest!r} is not a SHA-256 digest (sha256:<64 hex digits>).")
    return f"sha256:{match[1].lower()}"


def is_digest(text: str) -> bool:
    return DIGEST_PATTERN.match(text.strip()) is not None


def file_digest(path: Path) -> tuple[str, int]:
    """The file's `sha256:<hex>` digest and size, from one read of it in blocks."""
    hasher = hashlib.sha256()
    size = 0
    with path.open("rb") as file:
        while block := file.read(BLOCK_SIZE):
            hasher.update(block)
            size += len(block)
    return f"sha256:{hasher.hexdigest()}", size


def file_blocks(path: Path, start: int = 0, length: int | None = None) -> Iterator[bytes]:
    """The file's bytes from `start`, `length` of them (to the end when None), in blocks: a request body that is
    never held whole in memory. A generator, so a retried request makes a fresh one."""
    remaining = length
    with path.open("rb") as file:
        file.seek(start)
        while remaining is None or remaining > 0:
            block = file.read(BLOCK_SIZE if remaining is None else min(BLOCK_SIZE, remaining))
            if not block:
                return
            if remaining is not None:
                remaining -= len(block)
            yield block


def repr_digest_hex(header: str | None) -> str | None:
    """The hex SHA-256 an RFC 9530 `Repr-Digest: sha-256=:<base64>:` header states, or None without one."""
    match = REPR_DIGEST_PATTERN.search(header or "")
    return base64.b64decode(match[1]).hex() if match else None


@dataclass(frozen=True)
class Cache:
    """The content-addressed local cache of blobs, upload state and version records under `root`."""

    root: Path

    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / normalize_digest(digest).split(":", 1)[1]

    def cached_blob(self, digest: str, size: int | None = None) -> Path | None:
        """The cached copy of `digest`, if there is one (of `size` bytes, when the size is known)."""
        path = self.blob_path(digest)
        try:
            found = path.stat().st_size
        except FileNotFoundError:
            return None
        return path if size is None or found == size else None

    def incoming(self) -> BinaryIO:
        """A new temporary file beside the blobs, on the same file system so it can be renamed into place."""
        folder = self.root / "blobs" / "incoming"
        folder.mkdir(parents=True, exist_ok=True)
        return tempfile.NamedTemporaryFile(dir=folder, delete=False)

    def admit(self, temporary: Path, digest: str) -> Path:
        """Move a download that hashed to `digest` into the cache, read-only (a linked copy must not be edited)."""
        path = self.blob_path(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.chmod(0o444)
        os.replace(temporary, path)
        return path

    def upload_state_path(self, server: str, project: str, digest: str) -> Path:
        key = hashlib.sha256(f"{server}\n{project}\n{normalize_digest(digest)}".encode()).hexdigest()[:32]
        return self.root / "uploads" / f"{key}.json"

    def file_upload_state_path(self, server: str, project: str, source: Path) -> Path:
        """The state of an upload session started before the file's digest was known: keyed by the file instead."""
        key = hashlib.sha256(f"{server}\n{project}\nfile:{source.resolve()}".encode()).hexdigest()[:32]
        return self.root / "uploads" / f"{key}.json"

    def _file_hint_path(self, source: Path) -> Path:
        return self.root / "files" / f"{hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:32]}.json"

    @staticmethod
    def _identity(stat: os.stat_result) -> list[int]:
        """What changes when a file's bytes may have: its inode, size, modification and change times."""
        return [stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]

    def file_digest_hint(self, source: Path, stat: os.stat_result) -> str | None:
        """The digest the file had when this cache last saw it pushed, if it looks untouched since (`stat`): only a
        hint of which way to upload it, never trusted for the bytes (uploads hashes the file all the same)."""
        saved = self.load_json(self._file_hint_path(source)) or {}
        if saved.get("identity") != self._identity(stat) or not is_digest(str(saved.get("digest") or "")):
            return None
        return str(saved["digest"])

    def remember_file_digest(self, source: Path, stat: os.stat_result, digest: str) -> None:
        self.save_json(self._file_hint_path(source), {"identity": self._identity(stat), "digest": digest})

    def forget_stale_uploads(self, *, keep: Path, max_age: float = STALE_UPLOAD_SECONDS) -> list[Path]:
        """Remove the upload state files no later push will resume: older than `max_age` (the server has dropped
        their sessions by then), or whose source file is gone or no longer of the size saved. Returns them.

        The size and the modification time are checked, not the digest: hashing every pending source at each
        upload would cost more than the stale files do. `keep` (the upload about to start) is left alone."""
        folder = self.root / "uploads"
        removed: list[Path] = []
        now = time.time()
        for path in folder.glob("*.json") if folder.is_dir() else ():
            if path == keep:
                continue
            try:
                age = now - path.stat().st_mtime
            except FileNotFoundError:
                continue
            saved = self.load_json(path) or {}
            source = Path(str(saved.get("path") or ""))
            try:
                source_stat = source.stat() if saved.get("path") else None
            except OSError:
                source_stat = None
            fresh = (
                age < max_age
                and source_stat is not None
                and source_stat.st_size == saved.get("size")
                and source_stat.st_mtime <= path.stat().st_mtime
            )
            if not fresh:
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed

    def load_json(self, path: Path) -> dict[str, Any] | None:
        """A state file's content, or None when it is missing or unreadable (a crash mid-write leaves no harm)."""
        try:
            document = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return document if isinstance(document, dict) else None

    def save_json(self, path: Path, document: dict[str, Any]) -> None:
        """Write a state file atomically, readable by its owner only (it names projects and sessions)."""
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(descriptor, "w") as file:
            json.dump(document, file)
        os.replace(temporary, path)

    def version_record_path(self, server: str, version_id: int) -> Path:
        server_key = hashlib.sha256(server.encode()).hexdigest()[:16]
        return self.root / "versions" / server_key / f"{version_id}.json"


def place(source: Path, dest: Path, *, link: bool) -> Path:
    """Put a copy of the cached `source` at `dest` (a hard link when `link` and the file systems allow it),
    replacing `dest` atomically, so a reader never sees a half-written file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    temporary = dest.parent / f".{dest.name}.provenant-partial"
    temporary.unlink(missing_ok=True)
    try:
        if link:
            try:
                os.link(source, temporary)
            except OSError:
                link = False
        if not link:
            shutil.copyfile(source, temporary)
            temporary.chmod(0o644)
        os.replace(temporary, dest)
    except BaseException:  # Ctrl-C or a full disk mid-copy: no partial file left beside `dest`
        temporary.unlink(missing_ok=True)
        raise
    return dest
