"""Blob transfer at scale: hashing, verification, uploads and downloads of one large file, measured in one run.

(One file of about 1,500 lines on purpose: the servers, the measurements made against them and the tables that
compare them refer to each other throughout, and read together. What every benchmark needs around its measurements
is in benchmarks/harness.py.)

    .venv/bin/python benchmarks/blob_transfer.py [--size-gib 1] [--rss-sizes 1,4] [--skip-s3] [--smoke]

Everything it needs runs on 127.0.0.1 and is started and stopped here: granian (or gunicorn) serving the app (one
worker, DEBUG off), a Celery worker (solo pool) on a Redis database of its own, moto's S3 server, nginx running the
shipped deploy/nginx/provenant.conf in front of the app for the X-Accel-Redirect downloads (when nginx is
installed), and fresh databases (PostgreSQL when 127.0.0.1:5432 answers, else SQLite) copied from one migrated
template. The file is random bytes in a temporary folder; it stays in the page cache, so the figures are CPU and
loopback bound, as the targets intend, except where the app itself forces bytes to disk (fsync). Uploads are
compared with the slowest of the ceilings measured in the same run (hashing, a durable write, receiving an HTTP
body), downloads with the file sent over loopback by socket.sendfile. What each figure means and the targets are in
benchmarks/README.md, whose results section this script rewrites.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness import (  # benchmarks/ is the script's folder, first on sys.path
    LOCAL_POSTGRES,
    REPO,
    BenchDatabases,
    BenchError,
    Child,
    app_settings,
    bench_main,
    celery_worker,
    children_of,
    claim_redis_db,
    clean_environment,
    command_output,
    cpu_model,
    cpu_seconds,
    free_port,
    listening,
    manage,
    memory_kb,
    nproc,
    progress,
    results_header,
    serve_app,
    software_line,
    total_memory,
    verdict,
    web_server_command,
)

RESULTS_START = "<!-- results:start (written by benchmarks/blob_transfer.py) -->"
RESULTS_END = "<!-- results:end -->"

MIB = 1024**2
GIB = 1024**3
MB = 1_000_000
READ_CHUNK = MIB  # what the app reads and hashes per step (artifacts.storage.CHUNK_SIZE)
# The app's S3 upload settings, stated explicitly so the boto3 comparison uses the same ones.
APP_PART_SIZE = 8 * MIB
APP_S3_CONCURRENCY = 4

#: --smoke: above one S3 part (8 MiB), so the app's multipart upload runs, and two session chunks.
SMOKE_SIZE = 12 * MIB
SMOKE_CHUNK_MIB = 6
# How the Python client sizes the API chunks of a session (clients/python: Client's chunk_size and max_chunk_size,
# uploads.CHUNK_SECONDS): the first of CLIENT_FIRST_CHUNK, each next one what the previous one's speed sends in
# CLIENT_CHUNK_SECONDS, whole MiB, at most CLIENT_MAX_CHUNK (--smoke: SMOKE_CHUNK_MIB each).
CLIENT_FIRST_CHUNK = 16 * MIB
CLIENT_MAX_CHUNK = 256 * MIB
CLIENT_CHUNK_SECONDS = 2.0
HTTP_TIMEOUT = 900.0  # per socket operation; a whole transfer may take longer
#: The comment the script's PostgreSQL databases carry: nothing else is ever dropped.
MARKER = "provenant-bench-blob-transfer"

# Targets from the issues "Blob transfer at scale" and 18 (items 1 and 2).
VERIFY_LOCAL_TARGET = 0.9  # x hashlib
PUT_LOCAL_TARGET = 0.8  # x the slowest of hashlib, write + fsync and HTTP receive, measured in the same run
PUT_S3_TARGET = 0.8  # x boto3 upload_file
DOWNLOAD_LOCAL_TARGET = 0.8  # x the loopback ceiling (socket.sendfile), measured in the same run
RSS_TARGET_MB = 150
RSS_SAME_TOLERANCE = 0.10  # "about the same" for every size: the peak grows by at most this fraction

# boto3's uploads of the same file, the yardstick for the app's uploads to S3. boto3 names a checksum algorithm
# (CRC32) when it creates a multipart upload, and so does the app since commit dc5a8a8; without one, moto computes a
# full-object CRC64NVME of the assembled object in Python when the upload is completed (real S3 does that work on
# its own side). The last variant creates its uploads without one, the app's old way, for comparison with the
# first results in README.md. "app's settings" are APP_PART_SIZE and APP_S3_CONCURRENCY (--s3-concurrency).
BOTO3_VARIANTS = {
    "defaults": "boto3 upload_file, default TransferConfig (8 MiB parts, 10 threads)",
    "app's settings": "boto3 upload_file, the app's part size and concurrency (PROVENANT_UPLOAD_PART_SIZE, "
    "PROVENANT_S3_UPLOAD_CONCURRENCY)",
    "app's settings, no checksum": (
        "boto3 upload_file, the app's part size and concurrency, no checksum algorithm named"
    ),
}
BOTO3_BASES = {
    "app's settings": "boto3 (app's settings)",
    "defaults": "boto3 (defaults)",
    "app's settings, no checksum": "boto3 (app's settings, no checksum algorithm)",
}

#: Run by `manage.py shell -c` on the template database: the user every request is made as.
BENCH_USER = """
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
get_user_model().objects.create_user("bench").user_permissions.add(
    Permission.objects.get(content_type__app_label="artifacts", codename="add_project")
)
"""

TASK_DONE = re.compile(r"Task artifacts\.tasks\.verify_blob\[([0-9a-f-]+)\] succeeded in ([0-9.eE+-]+)s: '?(\w+)'?")
TASK_FAILED = re.compile(r"Task artifacts\.tasks\.verify_blob\[[0-9a-f-]+\] (?:raised|retry)")


def bare_wsgi_app(environ: dict, start_response: Callable) -> list[bytes]:
    """Reads a request body through gunicorn's wsgi.input in 1 MiB pieces, as the app does, and discards it.

    Served by the same gunicorn command as the app, it is the ceiling for receiving a body: no Django, no
    hashing, no writing.
    """
    stream = environ["wsgi.input"]
    remaining = int(environ.get("CONTENT_LENGTH") or 0)
    while remaining > 0:
        block = stream.read(min(READ_CHUNK, remaining))
        if not block:
            break
        remaining -= len(block)
    start_response("204 No Content", [])
    return [b""]


class SendfileServer:
    """The download ceiling: a thread answering each request on a loopback connection with a bare 200 and the file
    through socket.sendfile, the kernel copying from the page cache to the socket with no Python touching a byte.
    Read by the download rows' own reader (`read_body`), it is the most any server could deliver here."""

    def __init__(self, file: Path, size: int) -> None:
        self.file = file
        self.head = f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n".encode()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)  # so that the thread sees `stopped` between connections
        self.port = self.listener.getsockname()[1]
        self.stopped = threading.Event()
        self.error: OSError | None = None
        self.thread = threading.Thread(target=self._serve, name="sendfile", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                connection, _ = self.listener.accept()  # blocking, unlike the listener
            except TimeoutError:
                continue
            try:
                with connection, self.file.open("rb") as handle:
                    request = b""
                    while b"\r\n\r\n" not in request and (block := connection.recv(65536)):
                        request += block
                    connection.sendall(self.head)
                    connection.sendfile(handle)
            except OSError as error:
                self.error = error

    def __enter__(self) -> SendfileServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopped.set()
        self.thread.join()
        self.listener.close()
        if self.error is not None:
            raise BenchError(f"The loopback sendfile server failed: {self.error!r}")


# ---------------------------------------------------------------------------------------------- CPU


class CpuMeter:
    """CPU seconds each named process uses inside a `with` block: where a transfer's cycles go."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = pids
        self.used: dict[str, float] = {}

    def __enter__(self) -> CpuMeter:
        self._before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.used = {name: cpu_seconds(pid) - self._before[name] for name, pid in self.pids.items()}


# A measurement: its wall-clock seconds and the CPU seconds each process used meanwhile.
Timing = tuple[float, dict[str, float]]


# ---------------------------------------------------------------------------------------------- databases


class Databases:
    """Fresh databases for each server, copied from one template that is migrated once and holds the user and
    the API token (so every copy accepts the same token)."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.server = BenchDatabases(LOCAL_POSTGRES, default_base="postgres", marker=MARKER)
        if kind == "auto":
            kind = "postgres" if self.server.answers() else "sqlite"
        self.kind = kind
        self.workdir = workdir
        self.prefix = f"provenant_bench_{os.getpid()}"
        self.sqlite_paths: dict[str, Path] = {}
        self.template_url = self._create("template")

    def _create(self, label: str, template: str | None = None) -> str:
        if self.kind == "sqlite":
            path = self.workdir / f"db-{label}.sqlite3"
            if template is not None:
                shutil.copyfile(self.sqlite_paths[template], path)
            url = f"sqlite:///{path}"
            self.sqlite_paths[url] = path
            return url
        name = f"{self.prefix}_{label}".replace("-", "_")
        self.server.create(name, template=None if template is None else urlsplit(template).path.lstrip("/"))
        return self.server.url(name)

    def fresh(self, label: str) -> str:
        return self._create(label, template=self.template_url)

    def blob_id(self, url: str, digest: str) -> int:
        if self.kind == "sqlite":
            import sqlite3

            with contextlib.closing(sqlite3.connect(f"file:{self.sqlite_paths[url]}?mode=ro", uri=True)) as db:
                row = db.execute("SELECT id FROM artifacts_blob WHERE digest = ?", (digest,)).fetchone()
        else:
            import psycopg

            with psycopg.connect(url) as db:
                row = db.execute("SELECT id FROM artifacts_blob WHERE digest = %s", (digest,)).fetchone()
        if row is None:
            raise BenchError(f"No blob row for sha256:{digest} in {url}.")
        return int(row[0])

    def version(self) -> str:
        if self.kind == "sqlite":
            import sqlite3

            return f"SQLite {sqlite3.sqlite_version}"
        return "PostgreSQL " + self.server.settings(["server_version"])["server_version"]

    def drop_all(self) -> None:
        self.server.drop_created(quiet=True)


# ---------------------------------------------------------------------------------------------- HTTP client


class FileSlice:
    """`length` bytes of a file from `offset`, read as http.client asks for them (blocksize at a time)."""

    def __init__(self, path: Path, offset: int, length: int) -> None:
        self._file = path.open("rb")
        self._file.seek(offset)
        self._remaining = length

    def read(self, size: int = -1) -> bytes:
        if self._remaining <= 0:
            return b""
        size = self._remaining if size is None or size < 0 else min(size, self._remaining)
        data = self._file.read(size)
        self._remaining -= len(data)
        return data

    def close(self) -> None:
        self._file.close()


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class Api:
    """Requests to one server over loopback, each on its own connection (gunicorn's sync worker closes it)."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token

    def _connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=HTTP_TIMEOUT, blocksize=READ_CHUNK)

    def request(
        self, method: str, path: str, *, body: Any = None, length: int | None = None, headers: dict | None = None
    ) -> Answer:
        connection = self._connection()
        try:
            sent = {"Authorization": f"Bearer {self.token}", **(headers or {})}
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                sent["Content-Type"] = "application/json"
            if length is not None:
                sent["Content-Length"] = str(length)
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            return Answer(response.status, response.headers, response.read())
        finally:
            connection.close()

    def expect(self, answer: Answer, *statuses: int, what: str) -> Answer:
        if answer.status not in statuses:
            raise BenchError(f"{what}: HTTP {answer.status} (expected {statuses}): {answer.body[:500]!r}")
        return answer

    def send_file(
        self, method: str, path: str, file: Path, *, offset: int, length: int, headers: dict | None = None
    ) -> Answer:
        """Stream `length` bytes of `file` as the body, 1 MiB at a time, never holding more in memory."""
        body = FileSlice(file, offset, length)
        try:
            return self.request(
                method,
                path,
                body=body,
                length=length,
                headers={"Content-Type": "application/octet-stream", **(headers or {})},
            )
        finally:
            body.close()

    def download(
        self, path: str, *, headers: dict | None = None, status: int = 200
    ) -> tuple[int, http.client.HTTPMessage]:
        """GET `path` with the token, reading the body with `read_body`."""
        sent = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        return read_body("127.0.0.1", self.port, path, headers=sent, status=status)


def read_body(
    host: str, port: int, path: str, *, headers: dict, status: int = 200
) -> tuple[int, http.client.HTTPMessage]:
    """GET `path`, reading the body into one reused 1 MiB buffer (the bytes go nowhere): the reader of every
    download row and of the loopback ceiling they are compared with. The byte count and the answer's headers."""
    connection = http.client.HTTPConnection(host, port, timeout=HTTP_TIMEOUT, blocksize=READ_CHUNK)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        if response.status != status:
            raise BenchError(f"GET {path}: HTTP {response.status}, not {status}: {response.read(500)!r}")
        buffer = bytearray(READ_CHUNK)
        total = 0
        while count := response.readinto(buffer):
            total += count
        return total, response.headers
    finally:
        connection.close()


# ---------------------------------------------------------------------------------------------- results


@dataclass
class Row:
    """One throughput figure."""

    name: str
    storage: str
    size: int
    seconds: float
    base: str = ""  # what the ratio compares against
    base_seconds: float | None = None
    target: float | None = None
    note: str = ""
    cpu: dict[str, float] | None = None  # CPU seconds used meanwhile, by process

    @property
    def mb_per_s(self) -> float:
        return self.size / self.seconds / MB

    @property
    def ratio(self) -> float | None:
        return None if self.base_seconds is None else self.base_seconds / self.seconds

    @property
    def passed(self) -> bool | None:
        return None if self.target is None else self.ratio >= self.target


@dataclass
class RssRow:
    """Peak resident memory of one server or worker process over the work it did."""

    process: str
    work: str
    storage: str
    size: int
    baseline_kb: int
    peak_kb: int

    @property
    def peak_mb(self) -> float:
        return self.peak_kb * 1024 / MB

    @property
    def passed(self) -> bool:
        return self.peak_mb < RSS_TARGET_MB


def size_label(size: int) -> str:
    return f"{size / GIB:g} GiB" if size >= GIB // 4 else f"{size / MIB:g} MiB"


def throughput_table(rows: list[Row]) -> str:
    lines = [
        "| Measurement | Storage | Size | Time (s) | MB/s | Ratio | Target | Result | CPU seconds meanwhile |",
        "| --- | --- | --- | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for row in rows:
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}x {row.base}"
        target = "" if row.target is None else f"≥ {row.target:g}x {row.base}"
        name = row.name + (f" ({row.note})" if row.note else "")
        cpu = ", ".join(f"{process} {seconds:.1f}" for process, seconds in (row.cpu or {}).items())
        lines.append(
            f"| {name} | {row.storage} | {size_label(row.size)} | {row.seconds:.2f} | {row.mb_per_s:,.0f} | "
            f"{ratio} | {target} | {verdict(row.passed)} | {cpu} |"
        )
    return "\n".join(lines)


def rss_table(rows: list[RssRow]) -> tuple[str, list[str]]:
    """The peak-memory table, and what missed its target in it."""
    lines = [
        "| Process | Work | Storage | File | RSS before (MB) | Peak RSS, VmHWM (MB) | Target | Result |",
        "| --- | --- | --- | --- | ---: | ---: | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row.process} | {row.work} | {row.storage} | {size_label(row.size)} | {row.baseline_kb * 1024 / MB:.0f}"
            f" | {row.peak_mb:.0f} | < {RSS_TARGET_MB} MB | {verdict(row.passed)} |"
        )
    misses = [f"{row.process}, {row.work} [{row.storage}, {size_label(row.size)}] {row.peak_mb:.0f} MB" for row in rows
              if not row.passed]  # fmt: skip
    same = []
    groups: dict[tuple[str, str, str], list[RssRow]] = {}
    for row in rows:
        groups.setdefault((row.process, row.work, row.storage), []).append(row)
    for (process, work, storage), members in groups.items():
        if len({member.size for member in members}) < 2:
            continue
        members.sort(key=lambda member: member.size)
        smallest, largest = members[0], members[-1]
        growth = (largest.peak_kb - smallest.peak_kb) / smallest.peak_kb
        ok = growth <= RSS_SAME_TOLERANCE
        if not ok:
            misses.append(f"{process}, {work} [{storage}] grows {growth:+.0%} from {size_label(smallest.size)}")
        same.append(
            f"| {process} | {work} | {storage} | {size_label(smallest.size)} → {size_label(largest.size)} | "
            f"{smallest.peak_mb:.0f} | {largest.peak_mb:.0f} ({growth:+.0%}) | "
            f"about the same (≤ {RSS_SAME_TOLERANCE:+.0%}) | {verdict(ok)} |"
        )
    return "\n".join(lines + same), misses


# ---------------------------------------------------------------------------------------------- the bench


def hash_file(path: Path, make: Callable[[], Any]) -> tuple[str, float]:
    digest = make()
    started = time.perf_counter()
    with path.open("rb") as handle:
        while block := handle.read(READ_CHUNK):
            digest.update(block)
    seconds = time.perf_counter() - started
    hexdigest = digest.hexdigest() if hasattr(digest, "hexdigest") else digest.finalize()
    return hexdigest, seconds


def write_random_file(path: Path, size: int) -> None:
    piece = 64 * MIB
    with path.open("wb") as handle:
        written = 0
        while written < size:
            count = min(piece, size - written)
            handle.write(os.urandom(count))
            written += count


def write_and_fsync(source: Path, target: Path) -> float:
    """Copy in 1 MiB writes and fsync, as FileSink does without the hashing: the disk's share of a local upload."""
    started = time.perf_counter()
    with source.open("rb") as reader, target.open("wb") as writer:
        while block := reader.read(READ_CHUNK):
            writer.write(block)
        writer.flush()
        os.fsync(writer.fileno())
    seconds = time.perf_counter() - started
    target.unlink()
    return seconds


def b64_digest(hexdigest: str) -> str:
    return base64.b64encode(bytes.fromhex(hexdigest)).decode()


def chunk_summary(lengths: list[int]) -> str:
    """Chunk lengths in MiB, repeats counted: "16 + 3 x 256 + 240 MiB"."""
    runs: list[list[int]] = []
    for length in lengths:
        if runs and runs[-1][0] == length:
            runs[-1][1] += 1
        else:
            runs.append([length, 1])
    parts = [f"{count} x {length / MIB:g}" if count > 1 else f"{length / MIB:g}" for length, count in runs]
    return " + ".join(parts) + " MiB"


@dataclass
class ServerFigures:
    """What the rounds of PUTs (and the last round's GETs and verifications) measured."""

    storage: str = ""
    puts: list[Timing] = field(default_factory=list)
    gets: list[Timing] = field(default_factory=list)
    redirect_gets: list[Timing] = field(default_factory=list)  # S3: ?redirect=true, the presigned URL followed
    nginx_gets: list[Timing] = field(default_factory=list)  # local disk: through nginx, X-Accel-Redirect
    nginx_range_gets: list[Timing] = field(default_factory=list)  # the same with Range: bytes=0-
    verifies: list[Timing] = field(default_factory=list)
    web_baseline: int = 0
    web_peaks: list[int] = field(default_factory=list)
    worker_baseline: int = 0
    worker_peak: int = 0


@dataclass
class Settings:
    secret_key: str
    broker_url: str
    token: str = ""


class Server:
    """The app under gunicorn on a fresh database and var folder (and, for S3, a fresh bucket); later a Celery
    worker in the same environment. `stop` ends both."""

    def __init__(self, bench: Bench, label: str, *, s3: bool) -> None:
        self.bench = bench
        self.label = label
        self.storage = "S3 (moto)" if s3 else "local disk"
        self.var_dir = bench.workdir / f"var-{label}"
        self.database_url = bench.databases.fresh(label)
        self.bucket = None
        if s3:
            self.bucket = f"bench-{label}-{uuid.uuid4().hex[:8]}"
            bench.s3_client().create_bucket(Bucket=self.bucket)
        bench.redis.flushdb()
        self.env = bench.app_env(database_url=self.database_url, var_dir=self.var_dir, bucket=self.bucket)
        self.worker: Child | None = None
        self.gunicorn, self.port = serve_app(
            f"{bench.args.server} ({label})",
            env=self.env,
            log_path=bench.workdir / f"{bench.args.server}-{label}.log",
            answers=lambda port: Api(port, bench.settings.token).request("GET", "/api/v1/projects/").status == 200,
            server=bench.args.server,
        )
        self.api = Api(self.port, bench.settings.token)
        self.gunicorn.wait_until(lambda: bool(children_of(self.gunicorn.pid)), "running its worker")
        self.web_worker_pid = children_of(self.gunicorn.pid)[0]

    def create_project(self, slug: str) -> str:
        answer = self.api.request("POST", "/api/v1/projects/", body={"slug": slug, "name": slug})
        self.api.expect(answer, 201, what="create project")
        return slug

    def warm_up(self, slug: str) -> None:
        """Upload 1 MiB of other bytes first, as a long-running worker would have: the first request that touches
        the storage loads boto3's models and opens the broker connection, which a measurement should not count."""
        data = os.urandom(MIB)
        digest = hashlib.sha256(data).hexdigest()
        answer = self.api.request(
            "PUT",
            f"/api/v1/projects/{slug}/blobs/sha256:{digest}",
            body=data,
            length=len(data),
            headers={"Content-Type": "application/octet-stream"},
        )
        self.api.expect(answer, 201, what=f"warm-up PUT ({self.label})")

    def web_memory(self) -> dict[str, int]:
        if children_of(self.gunicorn.pid) != [self.web_worker_pid]:
            raise BenchError(
                f"The web server ({self.label}) replaced its worker (timeout or crash); its log ends:\n"
                f"{self.gunicorn.log_tail()}"
            )
        return memory_kb(self.web_worker_pid)

    def put_blob(self, slug: str, file: Path, size: int, digest: str) -> float:
        started = time.perf_counter()
        answer = self.api.send_file(
            "PUT", f"/api/v1/projects/{slug}/blobs/sha256:{digest}", file, offset=0, length=size
        )
        seconds = time.perf_counter() - started
        self.api.expect(answer, 201, what=f"PUT blob ({self.label})")
        return seconds

    def get_blob(self, slug: str, size: int, digest: str) -> float:
        started = time.perf_counter()
        received, headers = self.api.download(f"/api/v1/projects/{slug}/blobs/sha256:{digest}")
        seconds = time.perf_counter() - started
        if received != size or headers.get("Content-Digest") != f"sha-256=:{b64_digest(digest)}:":
            raise BenchError(f"GET blob ({self.label}) returned {received} bytes, {headers.get('Content-Digest')}.")
        return seconds

    def get_blob_redirected(self, slug: str, size: int, digest: str) -> float:
        """GET ?redirect=true, then the presigned URL of its 302 straight from the bucket, as a client follows it
        (without the token: it is not the bucket's business)."""
        started = time.perf_counter()
        answer = self.api.request("GET", f"/api/v1/projects/{slug}/blobs/sha256:{digest}?redirect=true")
        self.api.expect(answer, 302, what=f"GET ?redirect=true ({self.label})")
        location = urlsplit(answer.headers["Location"])
        if location.port != self.bench.moto_port:
            raise BenchError(f"GET ?redirect=true ({self.label}) pointed at {location.netloc}, not moto.")
        received, _ = read_body(location.hostname, location.port, f"{location.path}?{location.query}", headers={})
        seconds = time.perf_counter() - started
        if received != size or answer.headers.get("Repr-Digest") != f"sha-256=:{b64_digest(digest)}:":
            raise BenchError(
                f"GET ?redirect=true ({self.label}) led to {received} bytes, {answer.headers.get('Repr-Digest')}."
            )
        return seconds

    def upload_session(self, slug: str, file: Path, size: int, digest: str, chunk: int) -> tuple[float, int]:
        """POST a session, PATCH `chunk`-byte pieces with Upload-Offset, PUT ?digest= to finish."""
        started = time.perf_counter()
        answer = self.api.request(
            "POST", f"/api/v1/projects/{slug}/uploads/", body={"digest": f"sha256:{digest}", "size": size}
        )
        self.api.expect(answer, 201, what="start upload session")
        location = urlsplit(answer.headers["Location"]).path
        offset = 0
        chunks = 0
        while offset < size:
            length = min(chunk, size - offset)
            answer = self.api.send_file(
                "PATCH", location, file, offset=offset, length=length, headers={"Upload-Offset": str(offset)}
            )
            self.api.expect(answer, 202, what=f"PATCH chunk at {offset}")
            if int(answer.headers["Upload-Offset"]) != offset + length:
                raise BenchError(f"The session stands at {answer.headers['Upload-Offset']}, not {offset + length}.")
            offset += length
            chunks += 1
        answer = self.api.request("PUT", f"{location}?digest=sha256:{digest}", length=0)
        self.api.expect(answer, 201, what="finish upload session")
        return time.perf_counter() - started, chunks

    def upload_session_as_the_client(
        self, slug: str, file: Path, size: int, digest: str, *, first_chunk: int, max_chunk: int
    ) -> tuple[float, list[int]]:
        """A large file sent as the Python client sends it to a server keeping blobs in a folder (clients/python,
        uploads.py), reading it once: a session started with the size alone; the file hashed in a thread while
        its chunks go out; chunks sized as the client sizes them (CLIENT_CHUNK_SECONDS); a HEAD of the blob once
        the digest is known (the client's check that the project does not hold the bytes already); the last chunk
        the body of PUT ?digest=. Not measured: the client's first POST with "direct": true, which a folder-backed
        server refuses once per client. The time and the chunks' lengths."""
        blob_url = f"/api/v1/projects/{slug}/blobs/sha256:{digest}"
        hashed: list[str | BaseException] = []

        def hash_beside() -> None:
            try:
                hashed.append(hash_file(file, hashlib.sha256)[0])
            except BaseException as error:  # raised again in the sending thread
                hashed.append(error)

        started = time.perf_counter()
        hasher = threading.Thread(target=hash_beside, name="hash", daemon=True)
        hasher.start()
        answer = self.api.request("POST", f"/api/v1/projects/{slug}/uploads/", body={"size": size})
        self.api.expect(answer, 201, what="start upload session without a digest")
        location = urlsplit(answer.headers["Location"]).path
        floor = max(first_chunk, int(answer.json()["min_chunk_size"]))
        chunk, offset, lengths, asked = floor, 0, [], False
        while True:
            length = min(chunk, size - offset)
            last = offset + length >= size
            if not asked and (last or not hasher.is_alive()):
                hasher.join()
                if isinstance(hashed[0], BaseException):
                    raise BenchError(f"Hashing the file beside the upload failed: {hashed[0]!r}")
                if hashed[0] != digest:
                    raise BenchError(f"The file hashed to sha256:{hashed[0]} beside the upload, not sha256:{digest}.")
                self.api.expect(self.api.request("HEAD", blob_url), 404, what="HEAD of the blob not yet uploaded")
                asked = True
            began = time.perf_counter()
            if last:
                answer = self.api.send_file("PUT", f"{location}?digest=sha256:{hashed[0]}", file, offset=offset,
                                            length=length, headers={"Upload-Offset": str(offset)})  # fmt: skip
                self.api.expect(answer, 201, what="finish upload session with its last chunk")
                lengths.append(length)
                break
            answer = self.api.send_file(
                "PATCH", location, file, offset=offset, length=length, headers={"Upload-Offset": str(offset)}
            )
            self.api.expect(answer, 202, what=f"PATCH chunk at {offset}")
            if int(answer.headers["Upload-Offset"]) != offset + length:
                raise BenchError(f"The session stands at {answer.headers['Upload-Offset']}, not {offset + length}.")
            lengths.append(length)
            offset += length
            speed = length / max(time.perf_counter() - began, 1e-3)
            chunk = min(max(floor, max_chunk), max(floor, int(speed * CLIENT_CHUNK_SECONDS) // MIB * MIB))
        seconds = time.perf_counter() - started
        if answer.json()["digest"] != f"sha256:{digest}":
            raise BenchError(f"The session stored {answer.json()['digest']}, not sha256:{digest}.")
        return seconds, lengths

    def start_worker(self) -> None:
        """A Celery worker (solo pool: tasks run in this very process) on an emptied queue."""
        self.bench.redis.flushdb()  # the upload's own verify task: the bench sends its tasks itself
        self.worker = celery_worker(
            f"Celery worker ({self.label})",
            pool=["--pool=solo", "--concurrency=1"],
            hostname=f"bench-{uuid.uuid4().hex[:8]}@localhost",
            env=self.env,
            log_path=self.bench.workdir / f"celery-{self.label}.log",
        )

    def verify(self, digest: str, size: int) -> float:
        """Queue artifacts.tasks.verify_blob for the blob and wait for the worker to finish it; its runtime."""
        assert self.worker is not None
        done_before = len(TASK_DONE.findall(self.worker.log_text()))
        blob_id = self.bench.databases.blob_id(self.database_url, digest)
        self.bench.celery().send_task("artifacts.tasks.verify_blob", args=[blob_id], queue="default")

        def finished() -> bool:
            text = self.worker.log_text()
            if TASK_FAILED.search(text):
                raise BenchError(f"verify_blob failed; the worker's log ends:\n{self.worker.log_tail()}")
            return len(TASK_DONE.findall(text)) > done_before

        self.worker.wait_until(finished, "done verifying", timeout=60 + size / (20 * MB))
        _, runtime, state = TASK_DONE.findall(self.worker.log_text())[done_before]
        if state != "verified":
            raise BenchError(f"verify_blob answered {state!r}, not 'verified'.")
        return float(runtime)

    def stop(self) -> None:
        try:
            if self.worker is not None:
                self.worker.stop()
            self.gunicorn.stop()
        finally:
            if self.bucket is not None:
                self.bench.empty_bucket(self.bucket)
            shutil.rmtree(self.var_dir, ignore_errors=True)


def nginx_module() -> Any:
    """tests/nginx.py: the shipped config made runnable on loopback, as its integration test runs it (imported from
    the checkout, which is not on this script's path; it needs neither pytest nor Django)."""
    if str(REPO) not in sys.path:
        sys.path.append(str(REPO))
    from tests import nginx

    return nginx


def nginx_version() -> str:
    nginx = nginx_module()
    if not nginx.installed():
        return ""
    result = subprocess.run([nginx.BINARY, "-v"], capture_output=True, text=True, timeout=10, check=False)  # noqa: S603
    return (result.stderr or result.stdout).strip().removeprefix("nginx version: ")


class NginxFront:
    """nginx running the shipped deploy/nginx/provenant.conf in front of a second web server of the app on `server`'s
    database and blob folder, that one with PROVENANT_ACCEL_REDIRECT: the app checks access, logs the read and
    answers X-Accel-Redirect, and nginx sends the file itself (sendfile). `stop` ends both."""

    def __init__(self, bench: Bench, server: Server) -> None:
        nginx = nginx_module()
        self.bench = bench
        self.label = f"{server.label}, behind nginx"
        self.prefix = nginx.ACCEL_PREFIX
        self.workdir = bench.workdir / f"nginx-{server.label}"
        self.workdir.mkdir()
        self.app, app_port = serve_app(
            f"{bench.args.server} ({self.label})",
            env=server.env | {"PROVENANT_ACCEL_REDIRECT": nginx.ACCEL_PREFIX},
            log_path=bench.workdir / f"{bench.args.server}-{server.label}-accel.log",
            answers=lambda port: Api(port, bench.settings.token).request("GET", "/api/v1/projects/").status == 200,
            server=bench.args.server,
        )
        self.nginx: Child | None = None
        try:
            self.app.wait_until(lambda: bool(children_of(self.app.pid)), "running its worker")
            self.app_worker_pid = children_of(self.app.pid)[0]
            self.port = free_port()
            config = nginx.render_config(self.workdir, port=self.port, upstream_port=app_port,
                                         blobs=server.var_dir / "blobs")  # fmt: skip
            self.nginx = Child("nginx", nginx.command(self.workdir, config), env=dict(os.environ),
                               log_path=self.workdir / "output.log")  # fmt: skip
            self.nginx.wait_until(
                lambda: listening(self.port) and bool(children_of(self.nginx.pid)), f"serving on 127.0.0.1:{self.port}"
            )
            self.nginx_worker_pid = children_of(self.nginx.pid)[0]
        except BaseException:
            self.stop()
            raise
        self.api = Api(self.port, bench.settings.token)

    def get_blob(self, slug: str, size: int, digest: str, *, whole_range: bool) -> float:
        """GET the blob through nginx: whole, or with `Range: bytes=0-` (a 206 of every byte, as a client resuming
        from the start or fetching one part of a parallel download asks)."""
        headers, status = ({"Range": "bytes=0-"}, 206) if whole_range else ({}, 200)
        started = time.perf_counter()
        received, answer = self.api.download(
            f"/api/v1/projects/{slug}/blobs/sha256:{digest}", headers=headers, status=status
        )
        seconds = time.perf_counter() - started
        b64 = f"sha-256=:{b64_digest(digest)}:"
        checks = {"Repr-Digest": b64} | (
            {"Content-Range": f"bytes 0-{size - 1}/{size}"} if whole_range else {"Content-Digest": b64}
        )
        wrong = {name: answer.get(name) for name, value in checks.items() if answer.get(name) != value}
        if received != size or wrong:
            raise BenchError(f"GET blob ({self.label}) returned {received} bytes, {wrong}.")
        return seconds

    def check_sent_from_file(self, count: int) -> None:
        """nginx logs a request's final URI once its last byte is sent: each of the `count` GETs must have been
        redirected to the blob folder, or nginx only passed on what the app streamed."""
        log = self.workdir / "access.log"

        def logged() -> list[str]:
            return [line.split(" ", 1)[1] for line in log.read_text().splitlines()] if log.exists() else []

        self.nginx.wait_until(lambda: len(logged()) >= count, f"logging {count} requests", timeout=10)
        streamed = [uri for uri in logged() if not uri.startswith(self.prefix)]
        if streamed:
            raise BenchError(f"nginx passed on the app's stream instead of sending the file: {streamed[:3]}")

    def stop(self) -> None:
        try:
            if self.nginx is not None:
                self.nginx.stop()
        finally:
            self.app.stop()


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.rows: list[Row] = []
        self.rss: list[RssRow] = []
        self.databases: Databases | None = None
        self.redis = None
        self.moto: Child | None = None
        self.moto_port: int | None = None
        self.moto_peak_kb = 0
        self._s3: dict[bool, Any] = {}
        self._celery = None
        self.settings = Settings(secret_key=secrets.token_urlsafe(50), broker_url="")
        self.hashlib: dict[int, list[Timing]] = {}
        #: The slowest of the upload ceilings measured at the main size, named: what local uploads are compared with.
        self.upload_ceiling: tuple[str, float] = ("hashlib", 0.0)
        #: The loopback ceiling's median seconds, by file size: what downloads are compared with.
        self.loopback: dict[int, float] = {}
        self.nginx_version = nginx_version()
        self._boto3_bucket: str | None = None

    # ---- environment

    def app_env(self, *, database_url: str, var_dir: Path, bucket: str | None) -> dict[str, str]:
        """The environment of every app process: production settings (DEBUG off) on loopback."""
        env = clean_environment("AWS_") | app_settings(
            database_url=database_url,
            var_dir=var_dir,
            secret_key=self.settings.secret_key,
            allowed_hosts="127.0.0.1",
            log_level="INFO",
        )
        env |= {
            "CELERY_BROKER_URL": self.settings.broker_url,
            "PROVENANT_UPLOAD_PART_SIZE": str(APP_PART_SIZE),
            "PROVENANT_S3_UPLOAD_CONCURRENCY": str(APP_S3_CONCURRENCY),
            "PYTHONUNBUFFERED": "1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        if bucket is not None:
            env |= self.s3_env() | {"PROVENANT_S3_BUCKET": bucket, "PROVENANT_S3_ENDPOINT_URL": self.s3_endpoint}
        return env

    def s3_env(self) -> dict[str, str]:
        # Credentials moto accepts; the config files point nowhere so nothing on this machine is read.
        return {
            "PROVENANT_S3_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_CONFIG_FILE": str(self.workdir / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.workdir / "no-aws-credentials"),
        }

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    def s3_client(self, *, checksums: bool = True) -> Any:
        """A client of moto; `checksums=False`: one that sends no checksum algorithm unless an operation requires
        one, so its multipart uploads are created as the app creates its own."""
        if checksums not in self._s3:
            import boto3
            from botocore.config import Config

            env = self.s3_env()
            self._s3[checksums] = boto3.session.Session(
                aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                region_name=env["PROVENANT_S3_REGION"],
            ).client(
                "s3",
                endpoint_url=self.s3_endpoint,
                config=Config(request_checksum_calculation="when_supported" if checksums else "when_required"),
            )
        return self._s3[checksums]

    def empty_bucket(self, bucket: str) -> None:
        """Free moto's memory: it keeps every object in this process's RAM."""
        if self.moto is None or self.moto.process.poll() is not None:
            return
        client = self.s3_client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=item["Key"])
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
            for upload in page.get("Uploads", []):
                client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])

    def celery(self) -> Any:
        if self._celery is None:
            from celery import Celery

            self._celery = Celery("bench", broker=self.settings.broker_url)
        return self._celery

    def prepare(self) -> None:
        self.settings.broker_url, self.redis = claim_redis_db()
        self.databases = Databases(self.args.db, self.workdir)
        progress(f"database: {self.databases.version()} (fresh copies of one migrated template)")
        progress(f"broker: {self.settings.broker_url}")
        env = self.app_env(database_url=self.databases.template_url, var_dir=self.workdir / "var-template", bucket=None)
        manage(env, "migrate", "--noinput")
        # A pipeline's account: it may create projects (the global permission the API asks for), and becomes the
        # maintainer of each it creates; no superuser, so the permission checks run as for any client.
        manage(env, "shell", "-c", BENCH_USER)
        self.settings.token = manage(env, "issue_token", "bench", "--name", "bench", "--quiet").strip()
        progress("template database migrated; user 'bench' (may add projects) and its API token created")

    def start_moto(self) -> None:
        self.moto_port = free_port()
        self.moto = Child(
            "moto S3 server",
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.moto_port)],
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            log_path=self.workdir / "moto.log",
        )
        self.moto.wait_until(lambda: listening(self.moto_port), f"listening on 127.0.0.1:{self.moto_port}")
        progress(f"moto S3 server on 127.0.0.1:{self.moto_port}")

    def cleanup(self) -> None:
        if self.moto is not None and self.moto.process.poll() is None:
            with contextlib.suppress(OSError):
                self.moto_peak_kb = memory_kb(self.moto.pid)["VmHWM"]
        Child.stop_all()
        if self.databases is not None:
            with contextlib.suppress(Exception):
                self.databases.drop_all()
        if self.redis is not None:
            with contextlib.suppress(Exception):
                self.redis.flushdb()

    # ---- measurements

    def meter(self, *, moto: bool = False, **pids: int | None) -> CpuMeter:
        """CPU of the given processes, of moto if asked, and of this script (the HTTP client, or boto3)."""
        named = dict(pids)
        if moto:
            named["moto"] = self.moto.pid
        named["bench"] = None
        return CpuMeter(named)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        ratio = "" if row.ratio is None else f", {row.ratio:.2f}x {row.base}"
        progress(f"  {row.name} [{row.storage}, {size_label(row.size)}]: {row.mb_per_s:,.0f} MB/s{ratio}")
        return row

    def repeated(self, measure: Callable[..., Timing], *arguments: Any) -> list[Timing]:
        """`measure(*arguments)` --repeat times."""
        return [measure(*arguments) for _ in range(self.args.repeat)]

    def make_file(self, size: int) -> tuple[Path, str]:
        """Random bytes in a file, and the hashlib figure for it (the ceiling every ratio refers to)."""
        path = self.workdir / f"random-{size}.bin"
        progress(f"writing {size_label(size)} of random bytes to {path}")
        write_random_file(path, size)
        digests: set[str] = set()

        def measure() -> Timing:
            with self.meter() as meter:
                digest, seconds = hash_file(path, hashlib.sha256)
            digests.add(digest)
            return seconds, meter.used

        self.hashlib[size] = self.repeated(measure)
        if len(digests) != 1:
            raise BenchError("hashlib gave different digests for the same file.")
        return path, digests.pop()

    def hashlib_seconds(self, size: int) -> float:
        return median_run(self.hashlib[size])[0]

    def measure_ceilings(self, file: Path, size: int) -> None:
        """What the machine allows: hashing, a durable write to the blob folder's disk, receiving an HTTP body."""
        progress("ceilings: hashing, disk, HTTP receive")
        ceiling = self.hashlib_seconds(size)
        seconds, cpu, note = median_run(self.hashlib[size])
        self.add(Row("hashlib.sha256, 1 MiB reads", "page cache", size, seconds, note=note, cpu=cpu))
        import rehashes

        def rehash() -> Timing:
            with self.meter() as meter:
                _, seconds = hash_file(file, rehashes.PySha256)
            return seconds, meter.used

        seconds, cpu, note = median_run(self.repeated(rehash))
        self.add(Row("rehashes.PySha256 (the app's resumable hasher)", "page cache", size, seconds, "hashlib",
                     ceiling, note=note, cpu=cpu))  # fmt: skip

        def durable_write() -> Timing:
            with self.meter() as meter:
                seconds = write_and_fsync(file, self.workdir / "fsync-probe.bin")
            return seconds, meter.used

        seconds, cpu, note = median_run(self.repeated(durable_write))
        self.add(Row("write in 1 MiB blocks + fsync, no hashing (FileSink's disk share)", "local disk", size, seconds,
                     "hashlib", ceiling, note=note, cpu=cpu))  # fmt: skip
        ceilings = {"hashlib": ceiling, "write + fsync": seconds}

        port = free_port()
        bare = Child(
            f"{self.args.server} (bare WSGI app)",
            web_server_command(self.args.server, "blob_transfer:bare_wsgi_app", port, chdir=REPO / "benchmarks"),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            log_path=self.workdir / "gunicorn-bare.log",
        )  # fmt: skip
        try:
            bare.wait_until(lambda: listening(port) and bool(children_of(bare.pid)), f"serving on 127.0.0.1:{port}")
            worker = children_of(bare.pid)[0]
            api = Api(port, "unused")

            def receive() -> Timing:
                with self.meter(app=worker) as meter:
                    started = time.perf_counter()
                    answer = api.send_file("PUT", "/", file, offset=0, length=size)
                    seconds = time.perf_counter() - started
                api.expect(answer, 204, what="PUT to the bare WSGI app")
                return seconds, meter.used

            seconds, cpu, note = median_run(self.repeated(receive))
        finally:
            bare.stop()
        receive = f"HTTP receive only: {self.args.server}, wsgi.input.read(1 MiB), bytes discarded"
        self.add(Row(receive, "none", size, seconds, "hashlib", ceiling, note=note, cpu=cpu))
        ceilings["HTTP receive"] = seconds
        slowest = max(ceilings, key=ceilings.__getitem__)
        self.upload_ceiling = (f"slowest ceiling ({slowest})", ceilings[slowest])

    def measure_download_ceiling(self, file: Path, size: int) -> None:
        """The most any server could deliver here: the file sent over loopback with socket.sendfile, read as the
        download rows read (SendfileServer)."""
        progress(f"ceiling: {size_label(size)} over loopback with socket.sendfile")
        with SendfileServer(file, size) as sender:
            api = Api(sender.port, "unused")

            def receive() -> Timing:
                with self.meter() as meter:
                    started = time.perf_counter()
                    received, _ = api.download("/")
                    seconds = time.perf_counter() - started
                if received != size:
                    raise BenchError(f"The loopback sendfile server sent {received} bytes, not {size}.")
                return seconds, meter.used

            runs = self.repeated(receive)
        seconds, cpu, note = median_run(runs)
        self.loopback[size] = seconds
        self.add(Row("loopback ceiling: socket.sendfile in a thread, read as the downloads are (1 MiB readinto)",
                     "page cache", size, seconds, note=note, cpu=cpu))  # fmt: skip

    def boto3_bucket(self) -> str:
        if self._boto3_bucket is None:
            self._boto3_bucket = f"bench-boto3-{uuid.uuid4().hex[:8]}"
            self.s3_client().create_bucket(Bucket=self._boto3_bucket)
        return self._boto3_bucket

    def boto3_upload(self, file: Path, size: int, *, variant: str) -> Timing:
        """boto3's managed multipart upload of the file to the same moto server (see BOTO3_VARIANTS)."""
        from boto3.s3.transfer import TransferConfig

        config = (
            TransferConfig()
            if variant == "defaults"
            else TransferConfig(multipart_chunksize=APP_PART_SIZE, max_concurrency=APP_S3_CONCURRENCY)
        )
        client = self.s3_client(checksums=variant != "app's settings, no checksum")
        bucket = self.boto3_bucket()
        with self.meter(moto=True) as meter:
            started = time.perf_counter()
            client.upload_file(str(file), bucket, "blob", Config=config)
            seconds = time.perf_counter() - started
        if client.head_object(Bucket=bucket, Key="blob")["ContentLength"] != size:
            raise BenchError("boto3's upload stored the wrong number of bytes.")
        self.empty_bucket(bucket)
        return seconds, meter.used

    def measure_uploads(self, *, file: Path, size: int, digest: str, s3: bool, main: bool) -> float | None:
        """Rounds of one PUT each to a fresh server (a second PUT of the same bytes would only hash them); with S3
        in the main run, each round also has boto3's uploads of the same file, in an order that rotates from round
        to round, so moto's drift hits all alike. The last round's server then serves the GETs and, with a Celery
        worker started for it, the verifications.

        Returns boto3's median time with the app's settings (S3 in the main run): the sessions' yardstick.
        """
        rounds = self.args.repeat if main else 1
        compare = s3 and main
        boto3_runs: dict[str, list[Timing]] = {variant: [] for variant in BOTO3_VARIANTS} if compare else {}
        figures = ServerFigures()
        for number in range(1, rounds + 1):
            steps = [*boto3_runs, "the app's PUT"]
            shift = (number - 1) % len(steps)
            for step in steps[shift:] + steps[:shift]:
                if step not in boto3_runs:
                    label = f"{'s3' if s3 else 'local'}-{size // MIB}m-{number}"
                    self.put_round(figures, file, size, digest, s3=s3, label=label, last=number == rounds, main=main)
                else:
                    progress(f"round {number}/{rounds}: {BOTO3_VARIANTS[step]}")
                    boto3_runs[step].append(self.boto3_upload(file, size, variant=step))

        storage, ceiling = figures.storage, self.hashlib_seconds(size)
        loopback = ("loopback ceiling", self.loopback[size])
        boto3_seconds = {}
        for variant, runs in boto3_runs.items():
            boto3_seconds[variant], cpu, note = median_run(runs)
            self.add(Row(BOTO3_VARIANTS[variant], storage, size, boto3_seconds[variant], "hashlib", ceiling, note=note,
                         cpu=cpu))  # fmt: skip
        put_name = "API upload: PUT /projects/{slug}/blobs/sha256:…"
        seconds, cpu, note = median_run(figures.puts)
        if compare:
            for variant, base in BOTO3_BASES.items():
                self.add(Row(put_name, storage, size, seconds, base, boto3_seconds[variant], PUT_S3_TARGET, note=note,
                             cpu=cpu))  # fmt: skip
        elif main:
            self.add(Row(put_name, storage, size, seconds, *self.upload_ceiling, PUT_LOCAL_TARGET, note=note, cpu=cpu))
        else:  # the upload ceilings are measured at the main size only
            self.add(Row(put_name, storage, size, seconds, "hashlib", ceiling, note=note, cpu=cpu))
        download_target = DOWNLOAD_LOCAL_TARGET if main and not s3 else None
        seconds, cpu, note = median_run(figures.gets)
        self.add(Row(f"API download: GET /projects/{{slug}}/blobs/sha256:…, {self.args.server} alone", storage, size,
                     seconds, *loopback, download_target, note=note, cpu=cpu))  # fmt: skip
        if figures.redirect_gets:
            seconds, cpu, note = median_run(figures.redirect_gets)
            self.add(Row("API download: GET …?redirect=true, its 302 followed to the presigned URL", storage, size,
                         seconds, *loopback, note=note, cpu=cpu))  # fmt: skip
        if figures.nginx_gets:
            seconds, cpu, note = median_run(figures.nginx_gets)
            self.add(Row("API download through nginx: GET, X-Accel-Redirect, nginx sends the file", storage, size,
                         seconds, *loopback, download_target, note=note, cpu=cpu))  # fmt: skip
            seconds, cpu, note = median_run(figures.nginx_range_gets)
            self.add(Row("API download through nginx: GET with Range: bytes=0- (206 of every byte)", storage, size,
                         seconds, *loopback, download_target, note=note, cpu=cpu))  # fmt: skip
        seconds, cpu, note = median_run(figures.verifies)
        target = VERIFY_LOCAL_TARGET if main and not s3 else None
        self.add(Row("verify: Celery task verify_blob → blob_verify, runtime", storage, size, seconds, "hashlib",
                     ceiling, target, note=note, cpu=cpu))  # fmt: skip
        # With several rounds each PUT had a fresh worker: the highest of their peaks counts.
        self.rss.append(RssRow(f"{self.args.server} worker", "PUT + GET", storage, size, figures.web_baseline,
                               max(figures.web_peaks)))  # fmt: skip
        self.rss.append(RssRow("Celery worker (solo)", "verify_blob", storage, size, figures.worker_baseline,
                               figures.worker_peak))  # fmt: skip
        return boto3_seconds.get("app's settings")

    def put_round(
        self, figures: ServerFigures, file: Path, size: int, digest: str, *, s3: bool, label: str, last: bool,
        main: bool,
    ) -> None:  # fmt: skip
        """One PUT to a fresh server; in the `last` round its GETs and verifications too, and in the `main` run the
        other ways of downloading: S3's redirect, or the local folder through nginx (when installed)."""
        progress(f"PUT{', GET, verify' if last else ''} of {size_label(size)} on a fresh server '{label}'")
        server = Server(self, label, s3=s3)
        try:
            slug = server.create_project("bench")
            server.warm_up(slug)
            figures.storage = server.storage
            figures.web_baseline = server.web_memory()["VmRSS"]
            with self.meter(app=server.web_worker_pid, moto=s3) as meter:
                seconds = server.put_blob(slug, file, size, digest)
            figures.puts.append((seconds, meter.used))
            if last:
                figures.gets = self.repeated(self.timed_get, server, slug, size, digest)
                if main and s3:
                    figures.redirect_gets = self.repeated(self.timed_redirect_get, server, slug, size, digest)
            figures.web_peaks.append(server.web_memory()["VmHWM"])
            if last and main and not s3 and self.nginx_version:
                self.nginx_round(figures, server, slug, size, digest)
            if last:
                server.start_worker()
                figures.worker_baseline = memory_kb(server.worker.pid)["VmRSS"]
                figures.verifies = self.repeated(self.timed_verify, server, digest, size)
                figures.worker_peak = memory_kb(server.worker.pid)["VmHWM"]
        finally:
            server.stop()

    def timed_get(self, server: Server, slug: str, size: int, digest: str) -> Timing:
        with self.meter(app=server.web_worker_pid, moto=server.bucket is not None) as meter:
            seconds = server.get_blob(slug, size, digest)
        return seconds, meter.used

    def timed_redirect_get(self, server: Server, slug: str, size: int, digest: str) -> Timing:
        with self.meter(app=server.web_worker_pid, moto=True) as meter:
            seconds = server.get_blob_redirected(slug, size, digest)
        return seconds, meter.used

    def nginx_round(self, figures: ServerFigures, server: Server, slug: str, size: int, digest: str) -> None:
        """GETs of the blob `server` stored, through nginx in front of a second web server on its database and
        folder (NginxFront): whole, then with a Range of every byte."""
        progress(f"GET of {size_label(size)} through nginx {self.nginx_version} (X-Accel-Redirect)")
        front = NginxFront(self, server)
        try:

            def timed(whole_range: bool) -> Timing:
                with self.meter(app=front.app_worker_pid, nginx=front.nginx_worker_pid) as meter:
                    seconds = front.get_blob(slug, size, digest, whole_range=whole_range)
                return seconds, meter.used

            figures.nginx_gets = self.repeated(timed, False)
            figures.nginx_range_gets = self.repeated(timed, True)
            front.check_sent_from_file(len(figures.nginx_gets) + len(figures.nginx_range_gets))
        finally:
            front.stop()

    def timed_verify(self, server: Server, digest: str, size: int) -> Timing:
        assert server.worker is not None
        with self.meter(app=server.worker.pid, moto=server.bucket is not None) as meter:
            seconds = server.verify(digest, size)
        return seconds, meter.used

    def measure_sessions(
        self, *, file: Path, size: int, digest: str, s3: bool, boto3_seconds: float | None = None,
        digest_first: bool = True,
    ) -> None:  # fmt: skip
        """Rounds of one resumable upload each to a fresh server: with the digest in the POST, --chunk-mib chunks and
        an empty PUT ?digest=; or, `digest_first` False, as the Python client sends a large file to a server keeping
        blobs in a folder, the digest named only at the end (Server.upload_session_as_the_client)."""
        chunk = self.args.chunk_mib * MIB
        first_chunk, max_chunk = self.args.client_chunks
        kind = f"in {self.args.chunk_mib} MiB chunks" if digest_first else "without a digest, as the client sends it"
        runs: list[Timing] = []
        peaks: list[int] = []
        for number in range(1, self.args.repeat + 1):
            label = f"{'s3' if s3 else 'local'}-session{'' if digest_first else '-late'}-{size // MIB}m-{number}"
            progress(f"round {number}/{self.args.repeat}: upload session {kind}, '{label}'")
            server = Server(self, label, s3=s3)
            try:
                slug = server.create_project("bench")
                server.warm_up(slug)
                baseline = server.web_memory()["VmRSS"]
                with self.meter(app=server.web_worker_pid, moto=s3) as meter:
                    if digest_first:
                        seconds, chunks = server.upload_session(slug, file, size, digest, chunk)
                        detail = f"{chunks} x {self.args.chunk_mib} MiB"
                    else:
                        seconds, lengths = server.upload_session_as_the_client(
                            slug, file, size, digest, first_chunk=first_chunk, max_chunk=max_chunk
                        )
                        detail = chunk_summary(lengths)
                runs.append((seconds, meter.used))
                peaks.append(server.web_memory()["VmHWM"])
                storage = server.storage
            finally:
                server.stop()
        seconds, cpu, note = median_run(runs)
        base = ("boto3 (app's settings)", boto3_seconds) if s3 else self.upload_ceiling
        detail += f", {note}" if note else ""
        if digest_first:
            name = "API upload session: POST, PATCH each chunk, PUT ?digest="
            work = f"upload session ({self.args.chunk_mib} MiB chunks)"
        else:
            name = "API upload session without a digest, as the client sends it: POST {size}, PATCH, PUT ?digest="
            work = "upload session, digest at the end (client's chunks)"
        self.add(Row(name, storage, size, seconds, *base, note=detail, cpu=cpu))
        self.rss.append(RssRow(f"{self.args.server} worker", work, storage, size, baseline, max(peaks)))

    def run(self) -> None:
        size = int(self.args.size_gib * GIB)
        file, digest = self.make_file(size)
        progress(f"sha256:{digest}")
        self.measure_ceilings(file, size)
        self.measure_download_ceiling(file, size)
        self.measure_uploads(file=file, size=size, digest=digest, s3=False, main=True)
        self.measure_sessions(file=file, size=size, digest=digest, s3=False)
        self.measure_sessions(file=file, size=size, digest=digest, s3=False, digest_first=False)
        if not self.args.skip_s3:
            self.start_moto()
            boto3_seconds = self.measure_uploads(file=file, size=size, digest=digest, s3=True, main=True)
            self.measure_sessions(file=file, size=size, digest=digest, s3=True, boto3_seconds=boto3_seconds)
        for rss_gib in self.args.rss_sizes:
            rss_size = int(rss_gib * GIB)
            if rss_size == size:
                continue
            rss_file, rss_digest = self.make_file(rss_size)
            try:
                self.measure_download_ceiling(rss_file, rss_size)
                self.measure_uploads(file=rss_file, size=rss_size, digest=rss_digest, s3=False, main=False)
                if self.args.rss_s3 and not self.args.skip_s3:
                    self.measure_uploads(file=rss_file, size=rss_size, digest=rss_digest, s3=True, main=False)
            finally:
                rss_file.unlink()


def median_run(runs: list[Timing]) -> tuple[float, dict[str, float], str]:
    """The run of median time (the lower middle one of an even count), and a note saying how many there were."""
    ordered = sorted(runs, key=lambda run: run[0])
    seconds, cpu = ordered[(len(ordered) - 1) // 2]
    return seconds, cpu, "" if len(ordered) == 1 else f"median of {len(ordered)}"


# ---------------------------------------------------------------------------------------------- report


def machine() -> list[str]:
    flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    extensions = [flag for flag in ("sha_ni", "avx2", "avx512f") if f" {flag}" in flags]
    memory = total_memory()
    df = command_output("df", "-h", tempfile.gettempdir()).splitlines()
    device, disk = "?", "?"
    if len(df) > 1:
        fields = df[1].split()
        device, disk = fields[0], f"{fields[0]} ({fields[1]}, {fields[3]} free)"
    rotational = Path(f"/sys/block/{Path(device).name}/queue/rotational")
    if rotational.exists():
        disk += ", reported rotational" if rotational.read_text().strip() == "1" else ", reported non-rotational"
    packages = ("Django", "granian", "gunicorn", "celery", "boto3", "django-storages", "moto", "rehashes")
    return [
        f"- CPU: {cpu_model()}, `nproc` = {nproc()} (SHA extensions: {', '.join(extensions) or 'none'})",
        f"- Memory: {memory} (`free -h`); the test files stay in the page cache",
        f"- Disk under {tempfile.gettempdir()}: {disk}",
        software_line(packages),
    ]


def report(bench: Bench, *, started_at: dt.datetime, seconds: float, command: str, code: str) -> str:
    table = throughput_table(bench.rows)
    rss, rss_misses = rss_table(bench.rss)
    misses = [
        f"{row.name} [{row.storage}] {row.ratio:.2f}x {row.base}" for row in bench.rows if row.passed is False
    ] + rss_misses
    lines = [
        *results_header(started_at=started_at, seconds=seconds, command=command, code=code),
        *machine(),
        f"- Database: {bench.databases.version()}; broker: Redis ({bench.settings.broker_url}); "
        f"web server: `{' '.join(web_server_command(bench.args.server, 'config.wsgi:application', 0)[2:])}`, DEBUG off",
        *(
            [
                f"- nginx {bench.nginx_version} in front for the rows through nginx: deploy/nginx/provenant.conf as "
                "shipped (listen address, upstream port and blob folder changed by tests/nginx.py)"
            ]
            if bench.nginx_version
            else ["- nginx: not installed, so no rows through nginx (Debian: apt-get install nginx-light)"]
        ),
        *(
            [f"- moto's peak RSS over the run: {bench.moto_peak_kb * 1024 / 1e9:.1f} GB (it keeps objects in memory)"]
            if bench.moto_peak_kb
            else []
        ),
        "",
        "MB = 10⁶ bytes. Ratios are throughput over the throughput of what they are compared with: local uploads "
        "with the slowest of the three upload ceilings above it (named), downloads with the loopback ceiling. CPU "
        "seconds: `app` is the web server's or Celery's worker doing the work, `nginx` nginx's worker, `moto` the S3 "
        "server, `bench` this script (the HTTP client and the file's hashing beside it, the loopback ceiling's "
        "sender, or boto3 for its own uploads).",
        "",
        table,
        "",
        rss,
        "",
        f"Targets missed: {len(misses)}" + "".join(f"\n- {miss}" for miss in misses),
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- main


def sizes(text: str) -> list[float]:
    values = [float(part) for part in text.split(",") if part.strip()]
    if not values or any(value <= 0 for value in values):
        raise argparse.ArgumentTypeError("a comma-separated list of positive sizes in GiB, e.g. 1,4")
    return values


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gib", type=float, default=1.0, help="size of the test file (default 1)")
    parser.add_argument(
        "--rss-sizes", type=sizes, default=[1.0, 4.0], help="file sizes for the peak-memory runs (default 1,4)"
    )
    parser.add_argument("--skip-s3", action="store_true", help="no moto server, local storage only")
    parser.add_argument(
        "--s3-concurrency",
        type=int,
        default=APP_S3_CONCURRENCY,
        help=f"the app's PROVENANT_S3_UPLOAD_CONCURRENCY, and boto3's in the comparison (default {APP_S3_CONCURRENCY})",
    )
    parser.add_argument(
        "--server",
        choices=("gunicorn", "granian"),
        default="granian",
        help="the web server, one worker (default granian, as README's production table; gunicorn: its sync worker)",
    )
    parser.add_argument("--rss-s3", action="store_true", help="also run the extra peak-memory sizes against S3")
    parser.add_argument("--db", choices=("auto", "postgres", "sqlite"), default="auto", help="default: auto")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of each measurement (uploads: rounds on fresh servers); the median counts",
    )
    parser.add_argument("--chunk-mib", type=int, default=64, help="chunk size of the upload session (default 64)")
    parser.add_argument("--no-readme", action="store_true", help="print the results only")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help=f"a quick check that everything runs: {SMOKE_SIZE // MIB} MiB, 1 round, {SMOKE_CHUNK_MIB} MiB chunks, "
        "local disk and S3, nginx when installed, no extra memory runs, --no-readme; exits non-zero on any error",
    )
    args = parser.parse_args(argv)
    if args.size_gib <= 0 or args.repeat < 1 or args.chunk_mib < 5:
        parser.error("--size-gib must be positive, --repeat at least 1, --chunk-mib at least 5 (S3's minimum part)")
    args.client_chunks = (CLIENT_FIRST_CHUNK, CLIENT_MAX_CHUNK)
    if args.smoke:
        args.size_gib, args.repeat, args.chunk_mib = SMOKE_SIZE / GIB, 1, SMOKE_CHUNK_MIB
        args.rss_sizes, args.no_readme = [], True
        args.client_chunks = (SMOKE_CHUNK_MIB * MIB, SMOKE_CHUNK_MIB * MIB)
    return args


def main(argv: list[str]) -> int:
    global APP_S3_CONCURRENCY
    args = parse_args(argv)
    APP_S3_CONCURRENCY = args.s3_concurrency
    return bench_main(__file__, argv, args, Bench, report, markers=(RESULTS_START, RESULTS_END))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
