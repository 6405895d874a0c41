"""The client's pull over a link slower than the machine: one stream against parallel ranges, through a relay that
caps the throughput of each connection, as a long link, a proxy or S3 caps one connection.

    .venv/bin/python benchmarks/client_pull_links.py [--size-gib 0.25] [--rounds 2] [--mbps 50] [--parallelism 1,4,8]
    .venv/bin/python benchmarks/client_pull_links.py --smoke     # 40 MiB, 1 round, 200 MB/s

The server is client_transfer.py's (granian, one worker, DEBUG off, a fresh database). A relay thread in this process
forwards every connection to it, pacing each connection's answers to `--mbps` MB/s; nothing else is changed. The fair
baseline goes through the same relay: a bare GET with `http.client` into a reused 1 MiB buffer, written to a file,
hashed and fsynced. The client pulls run in this process (the `provenant_client` on the path), into an empty cache
each time, with `download_parallelism` set to each of `--parallelism`. Prints a table; writes nothing else.
On loopback without the cap, client_transfer.py is the measurement: there one stream is the faster.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from statistics import median
from urllib.parse import urlsplit

from client_transfer import GIB, MB, MIB, Bench, get_to_file
from client_transfer import parse_args as transfer_args
from harness import BenchError, elapsed, exit_on_sigterm, failed, progress
from provenant_client import Client  # the client under test: the one on the path

SMOKE_SIZE = 40 * MIB


def relay(upstream_port: int, bytes_per_second: float) -> int:
    """Start a relay to `upstream_port` pacing each connection's answers; its port."""
    listener = socket.create_server(("127.0.0.1", 0))

    def pump(source: socket.socket, sink: socket.socket, rate: float | None) -> None:
        started, sent = time.perf_counter(), 0
        try:
            while data := source.recv(65536):
                sink.sendall(data)
                sent += len(data)
                if rate is not None and (ahead := sent / rate - (time.perf_counter() - started)) > 0:
                    time.sleep(ahead)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def accept() -> None:
        while True:
            downstream, _ = listener.accept()
            upstream = socket.create_connection(("127.0.0.1", upstream_port))
            threading.Thread(target=pump, args=(downstream, upstream, None), daemon=True).start()
            threading.Thread(target=pump, args=(upstream, downstream, bytes_per_second), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener.getsockname()[1]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gib", type=float, default=0.25, help="size of the blob (default 0.25)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds; medians (default 2)")
    parser.add_argument("--mbps", type=float, default=50.0, help="cap of each connection, MB/s (default 50)")
    parser.add_argument("--parallelism", default="1,4,8", help="download_parallelism values (default 1,4,8)")
    parser.add_argument("--db", choices=("auto", "postgres", "sqlite"), default="auto", help="default: auto")
    parser.add_argument("--smoke", action="store_true", help="40 MiB, 1 round, 200 MB/s: a check that it runs")
    args = parser.parse_args(argv)
    if args.smoke:
        args.size_gib, args.rounds, args.mbps = SMOKE_SIZE / GIB, 1, 200.0
    parallelisms = [int(value) for value in args.parallelism.split(",")]
    exit_on_sigterm()
    workdir = Path(tempfile.mkdtemp(prefix="provenant-pull-links-"))
    bench = Bench(transfer_args(["--size-gib", str(args.size_gib), "--db", args.db, "--no-readme"]), workdir)
    size = bench.args.size
    seconds: dict[str, list[float]] = {}
    try:
        bench.prepare()
        file = bench.make_file(size)
        pushed = bench.push(file, size, expect_sent=True)
        file.unlink()
        version = bench.api.request("GET", f"/api/v1/artifact-versions/{pushed['version']}/").json()
        port = relay(bench.port, args.mbps * MB)
        progress(f"relay on 127.0.0.1:{port}, each connection capped at {args.mbps:g} MB/s")
        target, cache = workdir / "bare.bin", workdir / "cache"

        def bare() -> None:
            path = urlsplit(version["download_url"]).path
            if get_to_file(port, bench.token, path, target, careful=True) != size:
                raise BenchError("the bare GET brought the wrong size")
            target.unlink()

        def pull(parallelism: int) -> None:
            with Client(
                f"http://127.0.0.1:{port}", bench.token, cache_dir=cache, download_parallelism=parallelism
            ) as c:
                if c.pull(pushed["version"]).stat().st_size != size:
                    raise BenchError("the pull brought the wrong size")
            shutil.rmtree(cache)

        rows = {"bare GET to a file + sha256 + fsync": bare}
        rows |= {f"client pull, download_parallelism={n}": (lambda n=n: pull(n)) for n in parallelisms}
        for number in range(1, args.rounds + 1):
            for name, action in rows.items():
                started = time.perf_counter()
                action()
                seconds.setdefault(name, []).append(time.perf_counter() - started)
                progress(f"round {number}: {name}: {seconds[name][-1]:.2f} s")
    except BenchError as error:
        return failed(error)
    finally:
        bench.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    baseline = median(seconds["bare GET to a file + sha256 + fsync"])
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"\n{size / MIB:.0f} MiB through a relay capping each connection at {args.mbps:g} MB/s, "
          f"{args.rounds} round(s), {elapsed():.0f} s; load average at the end {load}\n")  # fmt: skip
    print("| Measurement | Median s | MB/s | Rounds (s) | vs bare GET + sha256 + fsync |")
    print("| --- | ---: | ---: | --- | ---: |")
    for name, values in seconds.items():
        rounds = ", ".join(f"{value:.2f}" for value in values)
        print(f"| {name} | {median(values):.2f} | {size / median(values) / MB:,.0f} | {rounds} | "
              f"{baseline / median(values):.2f}x |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
