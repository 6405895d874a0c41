"""Format scan throughput on a PyTorch-format checkpoint and on a safetensors file, next to hashlib on the same file.

    .venv/bin/python benchmarks/scanning.py [--size-gib 1] [--rounds 3]
    .venv/bin/python benchmarks/scanning.py --smoke     # 32 MiB, 1 round, no README: that it runs and finds

Each file is written once into a local blob folder, as the app stores it: a checkpoint in torch.save's zip layout
(an OrderedDict pickle of `_rebuild_tensor_v2` calls in archive/data.pkl, 16 MiB float32 tensors as stored members;
built opcode by opcode, as tests/governance/supplychain/files.py does, torch not being installed) and a safetensors
file written by the reference library's layout (a JSON header, then the tensors). Each round, in alternating order,
times SHA-256 over the whole file (hashlib, CHUNK_SIZE reads: what verification costs) and the scan the worker runs
(governance.supplychain.services.scans: BlobStream over the storage read, then formats.scan_stream), and counts the
bytes the scan read. Both read the same file from the page cache (written just before, read every round). The peak
memory of the process is reported once the largest file was scanned. The smoke fails unless both files scan clean,
as the formats they are, and a checkpoint embedding os.system scans unsafe.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import struct
import sys
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from statistics import median

from harness import (
    BenchError,
    code_version,
    command_line,
    configure_django,
    exit_on_sigterm,
    failed,
    in_turn,
    machine_lines,
    progress,
    results_header,
    show_results,
)

MIB, GIB = 2**20, 2**30
TENSOR_BYTES = 16 * MIB
MARKERS = ("<!-- scanning:start -->", "<!-- scanning:end -->")


# The files -----------------------------------------------------------------------------------------------------------


def _global(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def _text(value: str) -> bytes:
    encoded = value.encode()
    return b"X" + struct.pack("<I", len(encoded)) + encoded


def _int(n: int) -> bytes:
    return b"K" + bytes([n]) if n < 256 else b"J" + struct.pack("<i", n)


def state_dict_pickle(count: int, numel: int, hook: bytes = b"") -> bytes:
    """torch.save's data.pkl for `count` float32 tensors of `numel` values in members data/0, data/1, ...; `hook`,
    if given, is one more pickled value under the key "hook" (a hostile one, for the smoke's check)."""
    out = b"\x80\x02" + _global("collections", "OrderedDict") + b")R("
    for key in range(count):
        storage = b"(" + _text("storage") + _global("torch", "FloatStorage") + _text(str(key)) + _text("cpu")
        storage += _int(numel) + b"tQ"
        args = b"(" + storage + _int(0) + _int(numel) + b"\x85" + _int(1) + b"\x85\x89"
        args += _global("collections", "OrderedDict") + b")Rt"
        out += _text(f"layers.{key}.weight") + _global("torch._utils", "_rebuild_tensor_v2") + args + b"R"
    if hook:
        out += _text("hook") + hook
    return out + b"u."


def write_checkpoint(path: Path, size: int, *, hook: bytes = b"") -> None:
    count = max(1, size // TENSOR_BYTES)
    block = bytes(range(256)) * (MIB // 256)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", state_dict_pickle(count, TENSOR_BYTES // 4, hook))
        archive.writestr("archive/byteorder", "little")
        for key in range(count):
            with archive.open(f"archive/data/{key}", "w", force_zip64=True) as member:
                for _ in range(TENSOR_BYTES // MIB):
                    member.write(block)
        archive.writestr("archive/version", "3\n")


def write_safetensors(path: Path, size: int) -> None:
    count = max(1, size // TENSOR_BYTES)
    header = {
        f"layers.{key}.weight": {
            "dtype": "F32",
            "shape": [TENSOR_BYTES // 4],
            "data_offsets": [key * TENSOR_BYTES, (key + 1) * TENSOR_BYTES],
        }
        for key in range(count)
    }
    encoded = json.dumps({"__metadata__": {"format": "pt"}, **header}).encode()
    encoded += b" " * (-len(encoded) % 8)
    block = bytes(range(256)) * (MIB // 256)
    with path.open("wb") as out:
        out.write(struct.pack("<Q", len(encoded)) + encoded)
        for _ in range(count * TENSOR_BYTES // MIB):
            out.write(block)


# The measurements ------------------------------------------------------------------------------------------------


def hash_seconds(path: Path, chunk: int) -> float:
    started = time.perf_counter()
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while data := stream.read(chunk):
            digest.update(data)
    return time.perf_counter() - started


def scan_seconds(key: str, size: int) -> tuple[float, object, int]:
    """The worker's scan of the stored bytes at `key`: (seconds, outcome, bytes read from storage)."""
    import io

    from governance.supplychain.formats import scan_stream
    from governance.supplychain.services.scans import CHUNK_SIZE

    raw = counting_stream(key, size)
    started = time.perf_counter()
    with io.BufferedReader(raw, buffer_size=CHUNK_SIZE) as stream:
        outcome = scan_stream(stream, size)
    return time.perf_counter() - started, outcome, raw.read_bytes


def counting_stream(key: str, size: int):
    """The scan's BlobStream, counting the bytes it reads (its class is defined once Django is set up)."""
    from governance.supplychain.services.scans import BlobStream

    class Counting(BlobStream):
        read_bytes = 0

        def readinto(self, buffer) -> int:
            n = super().readinto(buffer)
            Counting.read_bytes += n
            return n

    return Counting(key, size)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gib", type=float, default=1.0, help="size of each file (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; medians (default 3)")
    parser.add_argument("--no-readme", action="store_true", help="print the results only")
    parser.add_argument("--smoke", action="store_true", help="32 MiB, 1 round, --no-readme: that it runs and finds")
    args = parser.parse_args(argv)
    if args.smoke:
        args.size_gib, args.rounds, args.no_readme = 32 / 1024, 1, True
    size = int(args.size_gib * GIB)
    command, code, started_at = command_line(__file__, argv), code_version(), datetime.now(UTC)
    exit_on_sigterm()
    import tempfile

    workdir = Path(tempfile.mkdtemp(prefix="provenant-bench-scanning-"))
    try:
        rows = run(workdir, size, args.rounds, smoke=args.smoke)
    except BenchError as error:
        return failed(error)
    finally:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    seconds = (datetime.now(UTC) - started_at).total_seconds()
    results = report(rows, size=size, started_at=started_at, seconds=seconds, command=command, code=code)
    show_results(results, start=MARKERS[0], end=MARKERS[1], write_readme=not args.no_readme)
    return 0


def run(workdir: Path, size: int, rounds: int, *, smoke: bool) -> list[dict]:
    configure_django(f"sqlite:///{workdir}/db.sqlite3", str(workdir))
    from artifacts.storage import CHUNK_SIZE, blob_storage

    folder = Path(blob_storage().path("bench"))
    folder.mkdir(parents=True, exist_ok=True)
    files = {"PyTorch checkpoint (zip)": ("bench/checkpoint.pt", write_checkpoint)}
    files["safetensors"] = ("bench/model.safetensors", write_safetensors)
    expected = {"PyTorch checkpoint (zip)": "pytorch", "safetensors": "safetensors"}
    rows = []
    for name, (key, write) in files.items():
        path = Path(blob_storage().path(key))
        progress(f"writing the {name}, {size / GIB:.2f} GiB")
        write(path, size)
        file_size = path.stat().st_size
        hashing, scanning, read = [], [], 0
        for number in range(1, rounds + 1):
            progress(f"{name}: round {number} of {rounds}")
            for side in in_turn(number, "hash", "scan"):
                if side == "hash":
                    hashing.append(hash_seconds(path, CHUNK_SIZE))
                else:
                    seconds, outcome, read = scan_seconds(key, file_size)
                    scanning.append(seconds)
                    if (outcome.detected_format, outcome.verdict) != (expected[name], "clean"):
                        raise BenchError(f"The {name} scanned {outcome.detected_format}, {outcome.verdict}.")
        rows.append({"name": name, "size": file_size, "hash": median(hashing), "scan": median(scanning), "read": read})
        path.unlink()
    if smoke:
        import os
        import pickle

        class RunsShell:
            def __reduce__(self):
                return (os.system, ("echo pwned",))

        hostile = Path(blob_storage().path("bench/hostile.pt"))
        write_checkpoint(hostile, TENSOR_BYTES, hook=pickle.dumps(RunsShell(), protocol=2)[2:-1])
        _, outcome, _ = scan_seconds("bench/hostile.pt", hostile.stat().st_size)
        if outcome.verdict != "unsafe":
            raise BenchError(f"A checkpoint embedding os.system scanned {outcome.verdict}.")
        progress("a checkpoint embedding os.system scanned unsafe")
    rows.append({"peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024})
    return rows


def report(rows: list[dict], *, size: int, started_at, seconds: float, command: str, code: str) -> str:
    peak = rows.pop()["peak_rss"]
    lines = [*results_header(started_at=started_at, seconds=seconds, command=command, code=code)]
    lines += machine_lines(["picklescan", "numpy"], note=f"; `uptime` load average {load()} at the end")
    lines += [
        "",
        "| File | Size | SHA-256 (hashlib) | Scan | Scan / hashlib time | Bytes the scan read |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        gib = row["size"] / GIB
        lines.append(
            f"| {row['name']} | {gib:.2f} GiB | {row['hash']:.2f} s ({gib / row['hash']:.2f} GiB/s) | "
            f"{row['scan'] * 1000:.1f} ms ({gib / row['scan']:.1f} GiB/s) | {row['scan'] / row['hash']:.4f} | "
            f"{row['read'] / MIB:.1f} MiB |"
        )
    lines += ["", f"Peak memory of the process (ru_maxrss): {peak / MIB:.0f} MiB.", ""]
    return "\n".join(lines) + "\n"


def load() -> str:
    import os

    return " ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
