"""`mlflow.log_artifact` of one large file through the client's MLflow plugin to Provenant, against MLflow's own
proxied artifact server (`mlflow server --serve-artifacts`), on the same machine in the same run; and the peak
memory of both servers.

    .venv/bin/python benchmarks/mlflow_plugin.py [--size-gib 1] [--rounds 3] [--smoke]

Servers, started here on 127.0.0.1: Provenant under granian (one worker, DEBUG off, a fresh database and blob folder,
exactly as benchmarks/client_transfer.py starts it), and one `mlflow server` (SQLite backend store, `--serve-artifacts`
with a local `--artifacts-destination`, one worker) that is the tracking server of both sides. Two experiments: one
whose artifact location is `provenant+http://127.0.0.1:<port>/<project>` (the plugin), one with MLflow's default
`mlflow-artifacts:/` location (proxied through the tracking server into its local folder).

Each upload runs in a child process: start a run, time `mlflow.log_artifact(file)` alone, end the run. Every upload
sends bytes neither server has seen (the file's first 16 bytes replaced before each). The order of the two sides
alternates by round; the figures are medians. Peak memory is each server's process tree's largest VmHWM
(/proc/<pid>/status), read after the warm-up and at the end of the run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import sys
import time
from pathlib import Path
from statistics import median

from blob_transfer import (  # benchmarks/ is the script's folder, first on sys.path
    hash_file,
    size_label,
    write_random_file,
)
from client_transfer import PROJECT, Bench, fresh_bytes
from harness import (
    REPO,
    Child,
    bench_main,
    clean_environment,
    file_bench_arguments,
    file_bench_parsed,
    free_port,
    in_turn,
    json_child,
    listening,
    machine_lines,
    memory_kb,
    progress,
    results_header,
    verdict,
)

RESULTS_START = "<!-- results:start (written by benchmarks/mlflow_plugin.py) -->"
RESULTS_END = "<!-- results:end -->"

MIB = 1024**2
GIB = 1024**3
MB = 1_000_000
SMOKE_SIZE = 32 * MIB
#: How much Provenant's peak may still rise after the first large upload and count as flat.
FLAT_MB = 3
SPEED_TARGET = 2.0  # issue 17: the plugin at least 2x faster than MLflow's proxied artifact server
CHILD_TIMEOUT = 3600.0
PLUGIN = "plugin → Provenant (granian)"
PROXIED = "MLflow proxied artifacts (mlflow server --serve-artifacts)"
#: The ceiling for any upload into Provenant on this machine: one streaming PUT, the digest known beforehand (so no
#: hashing on the client and no chunks), timed alone with `http.client`.
CEILING = "ceiling: bare PUT to Provenant, digest known beforehand"

#: One `mlflow.log_artifact` in a fresh process, as a training script would call it; prints its seconds as JSON.
CHILD_CODE = """
import json, sys, time
import mlflow
from provenant_client import mlflow_plugin

mlflow_plugin.register_schemes()  # the client is imported from the checkout's source folder
request = json.loads(sys.argv[1])
mlflow.set_experiment(experiment_id=request["experiment"])
with mlflow.start_run():
    started = time.perf_counter()
    mlflow.log_artifact(request["file"])
    seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds}))
"""


def tree_peak_kb(pid: int, field: str = "VmHWM") -> int:
    """The largest VmHWM (or another /proc status field, VmRSS: memory held now) in a process and its descendants
    (the server's workers)."""
    peaks, pending = [], [pid]
    while pending:
        current = pending.pop()
        try:
            peaks.append(memory_kb(current).get(field, 0))
            pending.extend(int(child) for child in Path(f"/proc/{current}/task/{current}/children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return max(peaks, default=0)


class MlflowBench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.provenant = Bench(argparse.Namespace(db=args.db), workdir)
        #: Provenant's worker memory at rest after each round (VmRSS, kB): a leak grows it, a peak's noise does not.
        self.held: dict[int, int] = {}
        self.mlflow: Child | None = None
        self.tracking = ""
        self.experiments: dict[str, str] = {}
        self.seconds: dict[str, list[float]] = {PLUGIN: [], PROXIED: [], CEILING: []}
        self.peaks: dict[str, dict[str, int]] = {}

    def prepare(self) -> None:
        self.provenant.prepare()
        port = free_port()
        folder = self.workdir / "mlflow"
        folder.mkdir()
        command = [
            str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri",
            f"sqlite:///{folder / 'mlflow.db'}", "--serve-artifacts", "--artifacts-destination",
            str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ]  # fmt: skip
        self.mlflow = Child("mlflow server", command, env=clean_environment("MLFLOW_"), log_path=folder / "server.log")
        self.tracking = f"http://127.0.0.1:{port}"
        self.mlflow.wait_until(lambda: listening(port), f"answering on 127.0.0.1:{port}", timeout=180)
        import mlflow  # the benchmark's own process only creates the two experiments

        mlflow.set_tracking_uri(self.tracking)
        location = f"provenant+http://127.0.0.1:{self.provenant.port}/{PROJECT}"
        self.experiments = {
            PLUGIN: mlflow.create_experiment("plugin", artifact_location=location),
            PROXIED: mlflow.create_experiment("proxied"),
        }
        warm = self.workdir / "warm-up.bin"
        write_random_file(warm, MIB)
        for side in (PLUGIN, PROXIED):  # both servers' first request and imports, as long-running servers
            self.log_artifact(side, warm)
        warm.unlink()
        self.peaks["after warm-up"] = self.read_peaks()
        progress(f"mlflow server on {self.tracking}; experiments {self.experiments}")

    def read_peaks(self) -> dict[str, int]:
        return {PLUGIN: tree_peak_kb(self.provenant.server.pid), PROXIED: tree_peak_kb(self.mlflow.pid)}

    def log_artifact(self, side: str, file: Path) -> float:
        env = clean_environment("MLFLOW_") | {
            "PYTHONPATH": str(REPO / "clients" / "python" / "src"),
            "MLFLOW_TRACKING_URI": self.tracking,
            "PROVENANT_URL": f"http://127.0.0.1:{self.provenant.port}",
            "PROVENANT_TOKEN": self.provenant.token,
            "PROVENANT_CACHE_DIR": str(self.workdir / "client-cache"),
            "XDG_CONFIG_HOME": str(self.workdir / "no-config"),
        }
        request = {"experiment": self.experiments[side], "file": str(file)}
        answer = json_child(
            CHILD_CODE, request, what=f"log_artifact ({side})", cwd=self.workdir, env=env, timeout=CHILD_TIMEOUT
        )
        return float(answer["seconds"])

    def run(self) -> None:
        size = self.args.size
        file = self.workdir / "model.bin"
        progress(f"writing {size_label(size)} of random bytes to {file}")
        write_random_file(file, size)
        try:
            for number in range(1, self.args.rounds + 1):
                progress(f"round {number} of {self.args.rounds}")
                for side in in_turn(number, PLUGIN, PROXIED):
                    fresh_bytes(file)
                    seconds = self.log_artifact(side, file)
                    self.seconds[side].append(seconds)
                    progress(f"  {side}: {seconds:.2f} s, {size / seconds / MB:,.0f} MB/s")
                    self.forget()
                fresh_bytes(file)
                digest = hash_file(file, hashlib.sha256)[0]
                started = time.perf_counter()
                self.provenant.bare_put(file, size, digest)
                self.seconds[CEILING].append(time.perf_counter() - started)
                progress(f"  {CEILING}: {self.seconds[CEILING][-1]:.2f} s")
                self.forget()
                self.peaks[f"after round {number}"] = self.read_peaks()
                self.held[number] = tree_peak_kb(self.provenant.server.pid, "VmRSS")
        finally:
            file.unlink()

    def forget(self) -> None:
        """Disk space only: the stored copies of earlier rounds go (every upload sends new bytes anyway)."""
        for path in (self.workdir / "mlflow" / "artifacts").rglob("model.bin"):
            path.unlink()
        for path in self.provenant.var_dir.rglob("*"):
            if path.is_file() and path.stat().st_size >= self.args.size:
                path.unlink()

    def cleanup(self) -> None:
        Child.stop_all()
        self.provenant.cleanup()


def report(bench: MlflowBench, *, started_at: dt.datetime, seconds: float, command: str, code: str) -> str:
    size = bench.args.size
    plugin, proxied = median(bench.seconds[PLUGIN]), median(bench.seconds[PROXIED])
    ratio = proxied / plugin
    rounds = [peaks[PLUGIN] * 1024 / MB for name, peaks in bench.peaks.items() if name.startswith("after round")]
    first, last = rounds[0], rounds[-1]
    lines = [
        *results_header(started_at=started_at, seconds=seconds, command=command, code=code),
        *machine_lines(
            ("Django", "granian", "mlflow", "httpx", "provenant-client"),
            note=f"; load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())} (shared machine)",
        ),
        f"- Provenant: granian, one worker, DEBUG off; database {bench.provenant.databases.version()}; local blob "
        f"folder. MLflow: `mlflow server --serve-artifacts --artifacts-destination <local folder> --workers 1`, "
        "SQLite backend store, the tracking server of both sides",
        f"- File: {size_label(size)} of random bytes in the page cache, {bench.args.rounds} round(s), the sides' "
        "order alternating by round; each upload new bytes; `mlflow.log_artifact` timed alone in a fresh process",
        "",
        "| Upload path | Median s | MB/s | Rounds (s) |",
        "| --- | ---: | ---: | --- |",
        *(
            f"| {side} | {median(values):.2f} | {size / median(values) / MB:,.0f} | "
            f"{', '.join(f'{value:.2f}' for value in values)} |"
            for side, values in bench.seconds.items()
        ),
        "",
        f"Plugin speed-up (proxied median / plugin median): {ratio:.2f}x; goal ≥ {SPEED_TARGET:g}x: "
        f"{verdict(ratio >= SPEED_TARGET)}. The ceiling (proxied median / bare PUT median), what no client of this "
        f"server could beat here: {proxied / median(bench.seconds[CEILING]):.2f}x.",
        "",
        f"| Server: peak RSS (VmHWM, MB) | {' | '.join(bench.peaks)} |",
        f"| --- |{' ---: |' * len(bench.peaks)}",
        *(
            f"| {side} | {' | '.join(f'{peaks[side] * 1024 / MB:.0f}' for peaks in bench.peaks.values())} |"
            for side in (PLUGIN, PROXIED)
        ),
        "",
        # Flat: what the first large upload set is where the peak stays; growing with every upload is a leak.
        f"Provenant's peak after the first round → at the end: {first:.0f} → {last:.0f} MB (+{last - first:.0f}); "
        f"flat (within {FLAT_MB} MB): {verdict(last - first <= FLAT_MB)}. Held at rest after each round (VmRSS): "
        f"{', '.join(f'{kb * 1024 / MB:.0f}' for kb in bench.held.values())} MB",
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    file_bench_arguments(parser, smoke_size=SMOKE_SIZE)
    return file_bench_parsed(parser, argv, smoke_size=SMOKE_SIZE)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    return bench_main(__file__, argv, args, MlflowBench, report, markers=(RESULTS_START, RESULTS_END))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
