"""Upload session chunk sizes against one streaming PUT, side by side, on a disk-backed server: what a chunk costs.

    .venv/bin/python benchmarks/session_chunks.py [--size-gib 1] [--rounds 3] [--chunks-mib 16,64,128,256]
    .venv/bin/python benchmarks/session_chunks.py --smoke     # 40 MiB, 1 round, 16 and 32 MiB chunks: that it runs

The server is client_transfer.py's (granian, one worker, a local blob folder, a fresh database, verification queued
to a Redis database no worker reads). Every row is driven by `http.client` with the digest known beforehand (it is
the same for every row, so it is not timed): a PUT of the whole file, then for each chunk size an upload session
(`POST …/uploads/`, a `PATCH` per chunk with Upload-Offset, `PUT ?digest=` to finish). Every upload sends bytes new
to the server (the file's first 16 bytes replaced first). Prints the median of the rounds and its ratio to the PUT;
the README is not touched. Chose the client's adaptive chunk size (provenant_client/uploads.py).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from urllib.parse import urlsplit

from blob_transfer import hash_file, size_label  # benchmarks/ is the script's folder, first on sys.path
from client_transfer import GIB, MB, MIB, PROJECT, Bench, fresh_bytes
from harness import BenchError, exit_on_sigterm, failed, progress


def session_upload(bench: Bench, file: Path, size: int, digest: str, chunk: int) -> None:
    api = bench.api
    answer = api.request(
        "POST", f"/api/v1/projects/{PROJECT}/uploads/", body={"digest": f"sha256:{digest}", "size": size}
    )
    location = urlsplit(api.expect(answer, 201, what="start an upload session").headers["Location"]).path
    offset = 0
    while size - offset > chunk:
        answer = api.send_file(
            "PATCH", location, file, offset=offset, length=chunk, headers={"Upload-Offset": str(offset)}
        )
        api.expect(answer, 202, what=f"PATCH the chunk at {offset}")
        offset += chunk
    answer = api.send_file(
        "PUT", f"{location}?digest=sha256:{digest}", file, offset=offset, length=size - offset,
        headers={"Upload-Offset": str(offset)},
    )  # fmt: skip
    api.expect(answer, 201, what="finish the upload session")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gib", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chunks-mib", default="16,64,128,256")
    parser.add_argument("--db", choices=("auto", "postgres", "sqlite"), default="auto")
    parser.add_argument("--smoke", action="store_true", help="40 MiB, 1 round, 16,32 MiB chunks (CI: that it runs)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.size_gib, args.rounds, args.chunks_mib = 40 / 1024, 1, "16,32"
    size = int(args.size_gib * GIB)
    chunks = [int(value) * MIB for value in args.chunks_mib.split(",")]
    exit_on_sigterm()
    workdir = Path(tempfile.mkdtemp(prefix="provenant-session-chunks-"))
    bench = Bench(argparse.Namespace(db=args.db), workdir)
    times: dict[str, list[float]] = {}
    try:
        bench.prepare()
        file = bench.make_file(size)
        for number in range(1, args.rounds + 1):
            progress(f"round {number} of {args.rounds} ({size_label(size)})")
            rows = [("PUT", None)] + [(f"session, {chunk // MIB} MiB chunks", chunk) for chunk in chunks]
            for name, chunk in rows:
                fresh_bytes(file)
                digest = hash_file(file, hashlib.sha256)[0]
                started = time.perf_counter()
                if chunk is None:
                    bench.bare_put(file, size, digest)
                else:
                    session_upload(bench, file, size, digest, chunk)
                seconds = time.perf_counter() - started
                times.setdefault(name, []).append(seconds)
                progress(f"  {name}: {seconds:.2f} s")
                bench.forget([digest])
    except BenchError as error:
        return failed(error)
    finally:
        bench.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    put = median(times["PUT"])
    print(f"\n{size_label(size)}, {args.rounds} round(s), medians; ratio = PUT's time / the row's time\n")
    print("| Upload | Median s | MB/s | Rounds (s) | Ratio to PUT |\n| --- | ---: | ---: | --- | ---: |")
    for name, values in times.items():
        middle = median(values)
        rounds = ", ".join(f"{value:.2f}" for value in values)
        print(f"| {name} | {middle:.2f} | {size / middle / MB:,.0f} | {rounds} | {put / middle:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
