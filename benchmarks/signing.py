"""Model signature verification against hashing the same bytes: what checking a signature on a 1 GiB model costs.

    .venv/bin/python benchmarks/signing.py                 # 1 GiB, 3 rounds, results into README.md
    .venv/bin/python benchmarks/signing.py --smoke         # 32 MiB, 1 round, --no-readme: that it runs

The file is random bytes on local disk (read from the page cache after the first round, as a local blob store's
recent blobs are). In turns, each round: SHA-256 of the file in the store's read chunks (what `blob_verify`, the
integrity check, costs: the baseline); the server's signature check as `signature_verify` runs it, in its two
steps: streaming the bytes into a temporary file laid out as the manifest says (`modelsigning.lay_out`, the library
hashes paths), then `modelsigning.verify` (the model_signing library checks the bundle's signature and re-hashes the
file) — once for a key-based bundle, once for a certificate-based one; and the library's verify on the file in
place (no copy), which is the floor of any design that uses it. Signing the file (the client's `--sign-key`) is
timed too. Medians of the rounds; no database, no Django: the storage read is a plain file read.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

from harness import (
    REPO,
    code_version,
    command_line,
    elapsed,
    exit_on_sigterm,
    load_average,
    machine_lines,
    progress,
    results_header,
    show_results,
)

sys.path.insert(0, str(REPO))
from governance.supplychain import modelsigning  # no Django: the checks the service runs

START = "<!-- results:start (written by benchmarks/signing.py) -->"
END = "<!-- results:end (benchmarks/signing.py) -->"
MIB = 2**20
CHUNK = 4 * MIB
SMOKE_SIZE = 32 * MIB


def write_random(path: Path, size: int) -> None:
    with path.open("wb") as out:
        left = size
        while left:
            block = os.urandom(min(left, 16 * MIB))
            out.write(block)
            left -= len(block)


def chunks(path: Path):
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            yield block


def timed(action, *arguments) -> tuple[float, object]:
    started = time.perf_counter()
    result = action(*arguments)
    return time.perf_counter() - started, result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gib", type=float, default=1.0, help="size of the model (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; medians (default 3)")
    parser.add_argument("--no-readme", action="store_true", help="print the results only")
    parser.add_argument("--smoke", action="store_true", help="32 MiB, 1 round, --no-readme: that it runs")
    args = parser.parse_args(argv)
    size = SMOKE_SIZE if args.smoke else int(args.size_gib * 2**30)
    rounds = 1 if args.smoke else args.rounds
    exit_on_sigterm()
    started_at = datetime.datetime.now(datetime.UTC)
    code = code_version()
    load_start = load_average()
    from tests.governance.supplychain import signing  # real keys and bundles, made as the tests make them

    with tempfile.TemporaryDirectory(prefix="bench-signing-") as work:
        work = Path(work)
        model = work / "model.safetensors"
        progress(f"writing {size / MIB:.0f} MiB of random bytes")
        write_random(model, size)
        key, pki = signing.ec_key(work / "key"), signing.certificate_signer(work / "pki")
        trusted = {
            "key": [modelsigning.TrustedKey(1, "release-ci", "key", key.public_pem)],
            "certificate": [modelsigning.TrustedKey(2, "corporate-ca", "certificate", pki.ca_pem)],
        }
        timings: dict[str, list[float]] = {}
        bundles: dict[str, dict] = {}
        for number in range(rounds):
            progress(f"round {number + 1} of {rounds}")
            seconds, digest = timed(_sha256, model)
            timings.setdefault("hash", []).append(seconds)
            seconds, bundles["key"] = timed(signing.sign_with_key, model, key)
            timings.setdefault("sign key", []).append(seconds)
            seconds, bundles["certificate"] = timed(signing.sign_with_certificate, model, pki)
            timings.setdefault("sign certificate", []).append(seconds)
            for method in ("key", "certificate"):
                facts = modelsigning.read_bundle(bundles[method])
                assert facts.digest == digest, "the bundle signs other bytes"
                with tempfile.TemporaryDirectory(prefix="bench-verify-", dir=work) as scratch:
                    copy, laid = timed(modelsigning.lay_out, facts, Path(scratch), chunks(model))
                    check, verdict = timed(modelsigning.verify, bundles[method], facts, laid, trusted[method])
                if not verdict.verified:
                    raise SystemExit(f"{method}: not verified: {verdict.detail}")
                timings.setdefault(f"copy {method}", []).append(copy)
                timings.setdefault(f"verify {method}", []).append(check)
                timings.setdefault(f"total {method}", []).append(copy + check)
            facts = modelsigning.read_bundle(bundles["key"])
            seconds, verdict = timed(modelsigning.verify, bundles["key"], facts, model, trusted["key"])
            timings.setdefault("in place", []).append(seconds)
    results = report(args, argv, size, rounds, timings, started_at, code, load_start)
    show_results(results, start=START, end=END, write_readme=not (args.no_readme or args.smoke))
    return 0


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    for block in chunks(path):
        digest.update(block)
    return digest.hexdigest()


def report(args, argv, size, rounds, timings, started_at, code, load_start) -> str:
    m = {name: median(values) for name, values in timings.items()}
    base = m["hash"]
    gib = size / 2**30

    def row(label: str, name: str, how: str) -> str:
        return f"| {label} | {m[name]:.2f} | {m[name] / base:.2f}x | {gib / m[name]:.2f} | {how} |"

    lines = [
        *results_header(started_at=started_at, seconds=elapsed(), command=command_line(__file__, argv), code=code),
        *machine_lines(["model-signing", "cryptography", "pyOpenSSL"]),
        f"- Load average {load_start} at the start, {load_average()} at the end (the machine is shared)",
        f"- Model: {size / MIB:,.0f} MiB of random bytes on local disk; temporary files in {tempfile.gettempdir()}; "
        f"medians of {rounds} round(s)",
        "",
        "| Step | Seconds | x hashing | GiB/s | What |",
        "| --- | ---: | ---: | ---: | --- |",
        row("Hash (baseline)", "hash", "SHA-256 of the file in 4 MiB reads: the integrity check's cost"),
        row("Check, key-based", "total key", "`signature_verify`'s work: copy to a temporary file, then verify"),
        row("  of which copy", "copy key", "the bytes streamed into the manifest's layout"),
        row("  of which verify", "verify key", "model_signing: signature, then re-hash of the copy"),
        row("Check, certificate-based", "total certificate", "the same with a CA chain (OpenSSL path check)"),
        row("Verify in place (floor)", "in place", "model_signing on the original file, no copy"),
        row("Sign, key (client)", "sign key", "`provenant push --sign-key` before sending"),
        row("Sign, certificate (client)", "sign certificate", "model_signing's certificate signer"),
        "",
        f"**A signature check of a {gib:g} GiB model costs {m['total key'] / base:.1f}x hashing it** "
        f"({m['total key']:.2f} s against {base:.2f} s; key-based).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
