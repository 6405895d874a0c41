"""The Python client's transfers against bare HTTP: `Client.push` and `Client.pull` of one large file, each compared
with a plain streaming PUT or GET of the same bytes to the same server in the same run, and the client's peak memory.

    .venv/bin/python benchmarks/client_transfer.py [--size-gib 1] [--rounds 3] [--rss-sizes 1,4] [--parallelism 4]
                                                   [--smoke]

One server for the whole run, started here on 127.0.0.1: the app under granian (one worker, DEBUG off) on a fresh
database (PostgreSQL when 127.0.0.1:5432 answers, else SQLite) and a blob folder of its own, with verification
queued to a Redis database of its own (when 6379 answers) that no worker reads, so no verification competes with
the transfers. The client side of every client measurement runs in a child process of its own (the installed
`provenant_client`), which reports its time and its peak resident memory (`VmHWM`, and `ru_maxrss` at exit).

The server keeps one copy of any bytes it has seen, and a second upload of them is only hashed, never written, so
every upload of a round sends bytes the server has never seen: before each one the file's first 16 bytes are
replaced by random ones (same size, the rest unchanged and still in the page cache). A second push of bytes the
project holds sends nothing; that is measured as "dedup push". What each row does is in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import http.client
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any
from urllib.parse import urlsplit

from blob_transfer import (  # benchmarks/ is the script's folder, first on sys.path
    BENCH_USER,
    HTTP_TIMEOUT,
    READ_CHUNK,
    Api,
    Databases,
    hash_file,
    size_label,
    write_random_file,
)
from harness import (
    BenchError,
    Child,
    app_settings,
    bench_main,
    claim_redis_db,
    clean_environment,
    in_turn,
    json_child,
    machine_lines,
    manage,
    progress,
    results_header,
    serve_app,
    verdict,
    web_server_command,
)

RESULTS_START = "<!-- results:start (written by benchmarks/client_transfer.py) -->"
RESULTS_END = "<!-- results:end -->"

MIB = 1024**2
GIB = 1024**3
MB = 1_000_000
PROJECT = "client-bench"
ARTIFACT = "model"
CLIENT_CHUNK = 16 * MIB  # the client's first chunk (its default chunk_size); it grows the later ones with speed
SMOKE_SIZE = 72 * MIB  # above the client's 64 MiB session threshold: the smoke push takes the session path
# Goals from issue 16.
SPEED_TARGET = 0.9  # x the fair bare transfer
RSS_TARGET_MB = 100
CHILD_TIMEOUT = 3600.0


# ---------------------------------------------------------------------------------------------- the client side


#: One client operation, run by a child process's interpreter as a pipeline would call it, printing its time and
#: memory as JSON. Nothing but the client and the standard library is imported, so the memory is the client's. The
#: server, token and cache come from the environment (PROVENANT_URL, PROVENANT_TOKEN, PROVENANT_CACHE_DIR).
#: Importing the client and opening it are not timed; the first request's connection is.
CHILD_CODE = """
import json, resource, sys, time
from provenant_client import Client

def hwm_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

request = json.loads(sys.argv[1])
before = hwm_kb()
with Client(download_parallelism=request.get("parallelism")) as client:
    started = time.perf_counter()
    if request["op"] == "push":
        result = client.push(request["file"], project=request["project"], artifact=request["artifact"])
        answer = {"bytes_sent": result.bytes_sent, "version": result.version["id"], "digest": result.digest}
    else:
        path = client.pull(int(request["version"]))
        answer = {"path": str(path), "bytes": path.stat().st_size}
    seconds = time.perf_counter() - started
answer.update(seconds=seconds, hwm_before_kb=before, hwm_kb=hwm_kb(),
              maxrss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
print(json.dumps(answer))
"""


# ---------------------------------------------------------------------------------------------- bare HTTP


def get_to_file(port: int, token: str, path: str, target: Path | None, *, careful: bool) -> int:
    """GET `path` with http.client into one reused 1 MiB buffer, written to `target` when given (as `curl -o`);
    `careful` also hashes it and fsyncs the file, what any downloader that checks its bytes must do."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT, blocksize=READ_CHUNK)
    sink = target.open("wb") if target is not None else None
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        if response.status != 200:
            raise BenchError(f"GET {path}: HTTP {response.status}: {response.read(500)!r}")
        buffer = bytearray(READ_CHUNK)
        view = memoryview(buffer)
        hasher = hashlib.sha256() if careful else None
        total = 0
        while count := response.readinto(buffer):
            total += count
            if hasher is not None:
                hasher.update(view[:count])
            if sink is not None:
                sink.write(view[:count])
        if sink is not None and careful:
            sink.flush()
            os.fsync(sink.fileno())
        return total
    finally:
        if sink is not None:
            sink.close()
        connection.close()


def httpx_get(port: int, token: str, path: str, target: Path, size: int) -> None:
    """The client's way of reading a download without the client: httpx streaming, `iter_bytes` of 1 MiB, each
    block written and hashed, then fsync. Tells the HTTP library's share of a pull from the client's own."""
    import httpx

    hasher = hashlib.sha256()
    received = 0
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(timeout=HTTP_TIMEOUT) as client, target.open("wb") as sink:
        with client.stream("GET", f"http://127.0.0.1:{port}{path}", headers=headers) as response:
            if response.status_code != 200:
                raise BenchError(f"httpx GET {path}: HTTP {response.status_code}")
            for block in response.iter_bytes(READ_CHUNK):
                sink.write(block)
                hasher.update(block)
                received += len(block)
        sink.flush()
        os.fsync(sink.fileno())
    if received != size:
        raise BenchError(f"the httpx GET brought {received} bytes, not {size}")


# ---------------------------------------------------------------------------------------------- results


@dataclass
class Figures:
    """Every round's seconds of each measurement, and the client processes' memory."""

    seconds: dict[str, list[float]] = field(default_factory=dict)
    rss: list[tuple[str, int, int, int]] = field(default_factory=list)  # (op, size, hwm before, peak), kB

    def add(self, name: str, seconds: float) -> None:
        self.seconds.setdefault(name, []).append(seconds)

    def median(self, name: str) -> float:
        return median(self.seconds[name])


BARE_PUT = "bare PUT only (digest known beforehand)"
BARE_HASH_PUT = "bare hash + PUT (sha256 of the file, then the PUT)"
BARE_SESSION = "bare hash + upload session (http.client, fixed 16 MiB chunks)"
PUSH = "client push (new bytes)"
DEDUP_PUSH = "client dedup push (bytes held: hash + HEAD + publish)"
BARE_GET = "bare GET, bytes discarded"
BARE_GET_FILE = "bare GET to a file (as curl -o)"
BARE_GET_CAREFUL = "bare GET to a file + sha256 + fsync"
HTTPX_GET = "httpx GET to a file + sha256 + fsync (iter_bytes of 1 MiB, the client's read path until issue 16)"
PULL = "client pull into an empty cache, as by default (one stream: the server serves the bytes itself)"
PULL_PARALLEL = "client pull into an empty cache, parallel ranges (download_parallelism=--parallelism, as from storage)"
ORDER = [
    BARE_PUT,
    BARE_HASH_PUT,
    BARE_SESSION,
    PUSH,
    DEDUP_PUSH,
    BARE_GET,
    BARE_GET_FILE,
    BARE_GET_CAREFUL,
    HTTPX_GET,
    PULL,
    PULL_PARALLEL,
]
#: How the "Compared with" column names the baselines.
SHORT = {
    BARE_PUT: "bare PUT",
    BARE_HASH_PUT: "bare hash + PUT",
    BARE_GET: "bare GET (discarded)",
    BARE_GET_FILE: "bare GET to a file",
    BARE_GET_CAREFUL: "bare GET + sha256 + fsync",
    BARE_SESSION: "bare session",
    HTTPX_GET: "httpx GET",
    PULL: "client pull, one stream",
}
#: What each client row is judged against (the fair baseline: the same work a client must do) and also shown with.
COMPARED = {
    BARE_SESSION: (None, [BARE_HASH_PUT]),
    PUSH: (BARE_HASH_PUT, [BARE_SESSION, BARE_PUT]),
    DEDUP_PUSH: (None, [BARE_HASH_PUT]),
    HTTPX_GET: (None, [BARE_GET_CAREFUL]),
    PULL: (BARE_GET_CAREFUL, [HTTPX_GET, BARE_GET_FILE, BARE_GET]),
    PULL_PARALLEL: (None, [BARE_GET_CAREFUL, PULL]),  # what ranges cost where the link is not the limit
}


# ---------------------------------------------------------------------------------------------- the bench


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.figures = Figures()
        self.databases: Databases | None = None
        self.redis: Any = None
        self.broker = "memory:// (verification runs in the request, after the answer's commit)"
        self.server: Child | None = None
        self.port = 0
        self.token = ""
        self.api: Api | None = None
        self.var_dir = workdir / "var"

    def prepare(self) -> None:
        self.databases = Databases(self.args.db, self.workdir)
        env = clean_environment("AWS_") | app_settings(
            database_url=self.databases.template_url,
            var_dir=self.var_dir,
            secret_key=os.urandom(32).hex(),
            allowed_hosts="127.0.0.1",
        )
        try:
            broker, self.redis = claim_redis_db()
        except Exception as error:  # no Redis: verification runs in-process, said so in the results
            progress(f"no Redis database ({error}); tasks run in-process")
        else:
            env["CELERY_BROKER_URL"] = broker
            self.broker = f"Redis ({broker}), no worker: verification is queued, never run during the run"
        progress(f"database: {self.databases.version()}; broker: {self.broker}")
        manage(env, "migrate", "--noinput")
        manage(env, "shell", "-c", BENCH_USER)
        self.token = manage(env, "issue_token", "bench", "--name", "bench", "--quiet").strip()
        self.server, self.port = serve_app(
            "granian",
            env=env,
            log_path=self.workdir / "granian.log",
            answers=lambda port: Api(port, self.token).request("GET", "/api/v1/projects/").status == 200,
        )
        self.api = Api(self.port, self.token)
        answer = self.api.request("POST", "/api/v1/projects/", body={"slug": PROJECT, "name": PROJECT})
        self.api.expect(answer, 201, what="create project")
        # Warm the worker up (the storage, the broker connection), as a long-running server would be.
        warm = self.workdir / "warm-up.bin"
        write_random_file(warm, MIB)
        self.bare_put(warm, MIB, hash_file(warm, hashlib.sha256)[0])
        warm.unlink()
        progress(f"granian serving the app on 127.0.0.1:{self.port}; project {PROJECT!r}, user 'bench'")

    def cleanup(self) -> None:
        Child.stop_all()
        if self.databases is not None:
            try:
                self.databases.drop_all()
            except Exception as error:  # keep cleaning up
                print(f"could not drop the databases: {error}", file=sys.stderr)
        if self.redis is not None:
            try:
                self.redis.flushdb()
            except Exception as error:  # keep cleaning up
                print(f"could not empty the Redis database: {error}", file=sys.stderr)

    # ---- the two sides

    def bare_put(self, file: Path, size: int, digest: str) -> None:
        answer = self.api.send_file(
            "PUT", f"/api/v1/projects/{PROJECT}/blobs/sha256:{digest}", file, offset=0, length=size
        )
        self.api.expect(answer, 201, what="bare PUT")

    def bare_session(self, file: Path, size: int, digest: str) -> None:
        """An upload session as the client drove one before its chunks grew with speed, without the client: POST, a
        PATCH per CLIENT_CHUNK with Upload-Offset, then `PUT ?digest=` to finish."""
        answer = self.api.request(
            "POST", f"/api/v1/projects/{PROJECT}/uploads/", body={"digest": f"sha256:{digest}", "size": size}
        )
        location = urlsplit(self.api.expect(answer, 201, what="start an upload session").headers["Location"]).path
        for offset in range(0, size, CLIENT_CHUNK):
            length = min(CLIENT_CHUNK, size - offset)
            answer = self.api.send_file(
                "PATCH", location, file, offset=offset, length=length, headers={"Upload-Offset": str(offset)}
            )
            self.api.expect(answer, 202, what=f"PATCH the chunk at {offset}")
        answer = self.api.request("PUT", f"{location}?digest=sha256:{digest}", length=0)
        self.api.expect(answer, 201, what="finish the upload session")

    def client(self, request: dict[str, Any], cache: Path) -> dict[str, Any]:
        """Run one client operation in a child process (`child_main`) and return what it reported."""
        env = clean_environment() | {
            "PROVENANT_URL": f"http://127.0.0.1:{self.port}",
            "PROVENANT_TOKEN": self.token,
            "PROVENANT_CACHE_DIR": str(cache),
            "XDG_CONFIG_HOME": str(self.workdir / "no-config"),
        }
        return json_child(
            CHILD_CODE,
            request | {"project": PROJECT, "artifact": ARTIFACT},
            what=f"client {request['op']}",
            cwd=self.workdir,
            env=env,
            timeout=CHILD_TIMEOUT,
        )

    def push(self, file: Path, size: int, *, expect_sent: bool) -> dict[str, Any]:
        report = self.client({"op": "push", "file": str(file)}, self.workdir / "push-cache")
        if report["bytes_sent"] != (size if expect_sent else 0):
            raise BenchError(f"the push sent {report['bytes_sent']} bytes, expected {size if expect_sent else 0}")
        return report

    def pull(self, version: int, size: int, *, parallelism: int | None) -> dict[str, Any]:
        cache = self.workdir / "pull-cache"
        shutil.rmtree(cache, ignore_errors=True)
        try:
            report = self.client({"op": "pull", "version": version, "parallelism": parallelism}, cache)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        if report["bytes"] != size:
            raise BenchError(f"the pull brought {report['bytes']} bytes, not {size}")
        return report

    # ---- measurements

    def make_file(self, size: int) -> Path:
        path = self.workdir / f"random-{size}.bin"
        progress(f"writing {size_label(size)} of random bytes to {path}")
        write_random_file(path, size)
        return path

    def forget(self, digests: list[str]) -> None:
        """Remove stored bytes the run is done with from the blob folder (the rows stay): disk space, not state
        any later measurement reads, since every upload sends new bytes."""
        wanted = {digest.removeprefix("sha256:") for digest in digests}
        for path in self.var_dir.rglob("*"):
            if path.name in wanted and path.is_file():
                path.unlink()

    def timed(self, name: str, size: int, action: Any) -> float:
        started = time.perf_counter()
        action()
        seconds = time.perf_counter() - started
        self.figures.add(name, seconds)
        progress(f"  {name}: {seconds:.2f} s, {size / seconds / MB:,.0f} MB/s")
        return seconds

    def record(self, name: str, size: int, report: dict[str, Any], *, rss_op: str | None) -> None:
        self.figures.add(name, report["seconds"])
        progress(f"  {name}: {report['seconds']:.2f} s, {size / report['seconds'] / MB:,.0f} MB/s, "
                 f"peak RSS {report['hwm_kb'] / 1000:.0f} MB")  # fmt: skip
        if rss_op is not None:
            self.figures.rss.append((rss_op, size, report["hwm_before_kb"], report["hwm_kb"]))

    def round(self, number: int, file: Path, size: int) -> None:
        """One round of every row. The uploads run in the opposite order every other round (client push first, then
        the bare ones), so that no row always runs after the others' writes: on this machine the order of 1 GiB
        uploads moved their times by more than the differences measured."""
        progress(f"round {number} of {self.args.rounds} ({size_label(size)})")
        uploaded = []
        pushed: dict[str, Any] = {}

        def bare_put() -> None:
            fresh_bytes(file)
            digest = hash_file(file, hashlib.sha256)[0]
            self.timed(BARE_PUT, size, lambda: self.bare_put(file, size, digest))
            uploaded.append(digest)

        def hash_and_put() -> None:
            hexdigest = hash_file(file, hashlib.sha256)[0]
            uploaded.append(hexdigest)
            self.bare_put(file, size, hexdigest)

        def hash_and_session() -> None:
            hexdigest = hash_file(file, hashlib.sha256)[0]
            uploaded.append(hexdigest)
            self.bare_session(file, size, hexdigest)

        def client_push() -> None:
            fresh_bytes(file)
            pushed.update(self.push(file, size, expect_sent=True))
            self.record(PUSH, size, pushed, rss_op="push")
            uploaded.append(pushed["digest"])
            self.record(DEDUP_PUSH, size, self.push(file, size, expect_sent=False), rss_op=None)

        def bare_rows() -> None:
            bare_put()
            fresh_bytes(file)
            self.timed(BARE_HASH_PUT, size, hash_and_put)
            fresh_bytes(file)
            self.timed(BARE_SESSION, size, hash_and_session)

        for upload in in_turn(number, bare_rows, client_push):
            upload()
        version = self.api.expect(
            self.api.request("GET", f"/api/v1/artifact-versions/{pushed['version']}/"), 200, what="read the version"
        ).json()
        path = urlsplit(version["download_url"]).path
        target = self.workdir / "bare-download.bin"

        def bare_get(to_file: bool, careful: bool) -> None:
            received = get_to_file(self.port, self.token, path, target if to_file else None, careful=careful)
            if received != size:
                raise BenchError(f"the bare GET brought {received} bytes, not {size}")

        self.timed(BARE_GET, size, lambda: bare_get(False, False))
        self.timed(BARE_GET_FILE, size, lambda: bare_get(True, False))
        target.unlink()
        self.timed(BARE_GET_CAREFUL, size, lambda: bare_get(True, True))
        target.unlink()
        self.timed(HTTPX_GET, size, lambda: httpx_get(self.port, self.token, path, target, size))
        target.unlink()
        self.record(PULL, size, self.pull(pushed["version"], size, parallelism=None), rss_op="pull, one stream")
        parallel = self.pull(pushed["version"], size, parallelism=self.args.parallelism)
        self.record(PULL_PARALLEL, size, parallel, rss_op=f"pull, {self.args.parallelism} parallel ranges")
        self.forget(uploaded)

    def rss_only(self, size: int) -> None:
        """One push and one pull of a file of `size`, for the client's peak memory only."""
        file = self.make_file(size)
        try:
            pushed = self.push(file, size, expect_sent=True)
            self.record(f"client push, {size_label(size)} (memory run)", size, pushed, rss_op="push")
            pulled = self.pull(pushed["version"], size, parallelism=self.args.parallelism)
            self.record(
                f"client pull, {size_label(size)} (memory run)",
                size,
                pulled,
                rss_op=f"pull, {self.args.parallelism} parallel ranges",
            )
            self.forget([pushed["digest"]])
        finally:
            file.unlink()

    def run(self) -> None:
        size = self.args.size
        file = self.make_file(size)
        try:
            for number in range(1, self.args.rounds + 1):
                self.round(number, file, size)
        finally:
            file.unlink()
        for rss_size in self.args.rss_sizes:
            if rss_size != size:
                self.rss_only(rss_size)


def fresh_bytes(file: Path) -> None:
    """Make the file's bytes new to the server: its first 16 bytes replaced by random ones, in place."""
    with file.open("r+b") as handle:
        handle.write(os.urandom(16))


# ---------------------------------------------------------------------------------------------- report


def throughput_table(figures: Figures, size: int) -> tuple[str, list[str]]:
    lines = [
        "| Measurement | Median s | MB/s | Rounds (s) | Compared with (medians) | Goal | Result |",
        "| --- | ---: | ---: | --- | --- | --- | --- |",
    ]
    misses = []
    for name in ORDER:
        if name not in figures.seconds:
            continue
        seconds = figures.median(name)
        rounds = ", ".join(f"{value:.2f}" for value in figures.seconds[name])
        fair, others = COMPARED.get(name, (None, []))
        ratios = [
            f"{figures.median(base) / seconds:.2f}x {SHORT[base]}" for base in [fair, *others] if base is not None
        ]
        passed = None if fair is None else figures.median(fair) / seconds >= SPEED_TARGET
        goal = "" if fair is None else f"≥ {SPEED_TARGET:g}x {SHORT[fair]}"
        if passed is False:
            misses.append(f"{name}: {figures.median(fair) / seconds:.2f}x {SHORT[fair]}")
        lines.append(
            f"| {name} | {seconds:.2f} | {size / seconds / MB:,.0f} | {rounds} | {'; '.join(ratios)} | {goal} | "
            f"{verdict(passed)} |"
        )
    return "\n".join(lines), misses


def rss_table(figures: Figures) -> tuple[str, list[str]]:
    lines = [
        "| Client operation | File | VmHWM after import (MB) | Peak RSS, VmHWM (MB) | Goal | Result |",
        "| --- | --- | ---: | ---: | --- | --- |",
    ]
    misses = []
    peaks: dict[tuple[str, int], tuple[int, int]] = {}
    for op, size, before, peak in figures.rss:
        known = peaks.get((op, size), (0, 0))
        peaks[(op, size)] = (max(known[0], before), max(known[1], peak))
    for (op, size), (before, peak) in sorted(peaks.items()):
        passed = peak * 1024 / MB < RSS_TARGET_MB
        if not passed:
            misses.append(f"client {op} of {size_label(size)}: peak {peak * 1024 / MB:.0f} MB")
        lines.append(
            f"| {op} | {size_label(size)} | {before * 1024 / MB:.0f} | {peak * 1024 / MB:.0f} | "
            f"< {RSS_TARGET_MB} MB | {verdict(passed)} |"
        )
    return "\n".join(lines), misses


def report(bench: Bench, *, started_at: dt.datetime, seconds: float, command: str, code: str) -> str:
    table, misses = throughput_table(bench.figures, bench.args.size)
    rss, rss_misses = rss_table(bench.figures)
    misses += rss_misses
    server = " ".join(web_server_command("granian", "config.wsgi:application", 0)[2:])
    lines = [
        *results_header(started_at=started_at, seconds=seconds, command=command, code=code),
        *machine_lines(
            ("Django", "granian", "httpx", "provenant-client"),
            note=f"; load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())} (shared machine)",
        ),
        f"- Server: `{server}`, DEBUG off; database {bench.databases.version()}; local blob folder; broker "
        f"{bench.broker}",
        f"- File: {size_label(bench.args.size)} of random bytes in the page cache, {bench.args.rounds} round(s); "
        "every upload sends bytes new to the server (its first 16 bytes replaced before each); parallel pull with "
        f"download_parallelism={bench.args.parallelism}",
        "",
        "MB = 10⁶ bytes. Ratios are the baseline's median time over the client's; the goal is met against the "
        "fair baseline, the one doing the work the client must do (push: hash then PUT; pull: GET into a file, "
        "hashed and fsynced).",
        "",
        table,
        "",
        rss,
        "",
        f"Goals missed: {len(misses)}" + "".join(f"\n- {miss}" for miss in misses),
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- main


def gib_list(text: str) -> list[float]:
    values = [float(part) for part in text.split(",") if part.strip()]
    if any(value <= 0 for value in values):
        raise argparse.ArgumentTypeError("a comma-separated list of positive sizes in GiB, e.g. 1,4")
    return values


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gib", type=float, default=1.0, help="size of the test file (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every measurement; medians (default 3)")
    parser.add_argument(
        "--rss-sizes", type=gib_list, default=[1.0, 4.0], help="sizes for the client's peak memory (default 1,4)"
    )
    parser.add_argument("--parallelism", type=int, default=4, help="threads of the parallel pull (default 4)")
    parser.add_argument("--db", choices=("auto", "postgres", "sqlite"), default="auto", help="default: auto")
    parser.add_argument("--no-readme", action="store_true", help="print the results only")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help=f"a quick check that everything runs: {SMOKE_SIZE // MIB} MiB, 1 round, no extra memory runs, "
        "--no-readme; exits non-zero on any error",
    )
    args = parser.parse_args(argv)
    if args.size_gib <= 0 or args.rounds < 1 or args.parallelism < 1:
        parser.error("--size-gib must be positive, --rounds and --parallelism at least 1")
    if args.smoke:
        args.size, args.rounds, args.rss_sizes, args.no_readme = SMOKE_SIZE, 1, [], True
    else:
        args.size = int(args.size_gib * GIB)
        args.rss_sizes = [int(gib * GIB) for gib in args.rss_sizes]
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    return bench_main(__file__, argv, args, Bench, report, markers=(RESULTS_START, RESULTS_END))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
