"""Provenant against its peer, MLflow's proxied artifact server, on the same file in the same run: upload, download
and publish times, their ratios, and the peak memory of both servers.

    .venv/bin/python benchmarks/peer_mlflow.py [--size-gib 1] [--rounds 3] [--mlflow-venv PATH] [--smoke]

MLflow runs from a virtualenv of its own, which this script makes the first time it is needed (`--mlflow-venv`,
default `var/bench/mlflow-venv`: `python -m venv`, then `pip install mlflow==MLFLOW_VERSION`), so MLflow and its
dependencies never share an interpreter with Provenant's (the dev extras' mlflow is the plugin's test peer, not this
one). Servers, on 127.0.0.1: Provenant under granian (one worker, DEBUG off, a fresh PostgreSQL database when one
answers and a local blob folder, as benchmarks/client_transfer.py starts it); `mlflow server --serve-artifacts`
(SQLite backend store, a local `--artifacts-destination`, one worker).

Each operation runs alone in a fresh child process and times only the call a pipeline makes:
- upload: Provenant `Client.push(file)` (hash, store, publish the version) | MLflow `MlflowClient.log_artifact`;
- download: Provenant `Client.pull(version)` into an empty cache and a file | MLflow `download_artifacts` of the run's
  file into an empty folder;
- publish: the upload, then registering what it stored as a model version: Provenant `Client.register` |
  MLflow `create_model_version` (source `runs:/<run>/<file>`).
Every upload sends bytes neither server has seen (the file's first 16 bytes replaced before each); the two sides
alternate order by round; the figures are medians, the ratios MLflow's median over Provenant's (above 1: Provenant
faster). Peak memory is each server's process tree's largest VmHWM (/proc/<pid>/status) at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path
from statistics import median

from blob_transfer import size_label, write_random_file  # benchmarks/ is the script's folder, first on sys.path
from client_transfer import PROJECT, Bench, fresh_bytes
from harness import (
    REPO,
    BenchError,
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
    progress,
    results_header,
    verdict,
)
from mlflow_plugin import tree_peak_kb

RESULTS_START = "<!-- results:start (written by benchmarks/peer_mlflow.py) -->"
RESULTS_END = "<!-- results:end -->"

MIB = 1024**2
GIB = 1024**3
MB = 1_000_000
SMOKE_SIZE = 16 * MIB
MLFLOW_VERSION = "3.17.2"
DEFAULT_VENV = REPO / "var" / "bench" / "mlflow-venv"
CHILD_TIMEOUT = 3600.0
OPERATIONS = ("upload", "download", "publish")
PROVENANT, MLFLOW = "Provenant", "MLflow"
#: Issue 18: Provenant's download at least 3x MLflow's in the same run.
DOWNLOAD_TARGET = 3.0

#: Provenant's side of one operation, in a child process with the checkout's client; prints JSON.
PROVENANT_CHILD = """
import json, sys, tempfile, time
from pathlib import Path
from provenant_client import Client

request = json.loads(sys.argv[1])
with Client(request["url"], request["token"], cache_dir=tempfile.mkdtemp(dir=request["scratch"])) as client:
    started = time.perf_counter()
    if request["operation"] == "download":
        client.pull(request["version"], Path(request["scratch"]) / "pulled.bin")
        version = request["version"]
    elif request["operation"] == "ceiling":
        # The least a download to a file costs here: one GET written as it comes, no hash, no fsync (`curl -o`).
        import http.client, os
        from urllib.parse import urlsplit
        url = urlsplit(request["url"])
        path = urlsplit(client.version(request["version"])["download_url"]).path
        started = time.perf_counter()
        connection = http.client.HTTPConnection(url.hostname, url.port)
        connection.request("GET", path, headers={"Authorization": f"Bearer {request['token']}"})
        answer = connection.getresponse()
        assert answer.status == 200, answer.status
        view = memoryview(bytearray(1 << 20))
        with open(Path(request["scratch"]) / "pulled.bin", "wb") as out:
            while count := answer.readinto(view):
                out.write(view[:count])
        connection.close()
        version = request["version"]
    else:
        pushed = client.push(request["file"], project=request["project"], artifact="peer-model", kind="model")
        version = pushed.version["id"]
        if request["operation"] == "publish":
            client.register(version, model="peer-model", project=request["project"])
    seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "version": version}))
"""

#: MLflow's side, run by the MLflow virtualenv's interpreter; prints JSON.
MLFLOW_CHILD = """
import json, os, sys, tempfile, time
import mlflow
from mlflow.tracking import MlflowClient

request = json.loads(sys.argv[1])
client = MlflowClient(tracking_uri=request["tracking"])
if request["operation"] == "download":
    started = time.perf_counter()
    mlflow.artifacts.download_artifacts(
        run_id=request["run"], artifact_path=os.path.basename(request["file"]),
        dst_path=tempfile.mkdtemp(dir=request["scratch"]), tracking_uri=request["tracking"],
    )
    run = request["run"]
else:
    run = client.create_run(request["experiment"]).info.run_id
    started = time.perf_counter()
    client.log_artifact(run, request["file"])
    if request["operation"] == "publish":
        client.create_model_version(
            "peer-model", source=f"runs:/{run}/{os.path.basename(request['file'])}", run_id=run
        )
seconds = time.perf_counter() - started
if request["operation"] != "download":
    client.set_terminated(run)
print(json.dumps({"seconds": seconds, "run": run}))
"""


def mlflow_python(venv: Path) -> Path:
    """The MLflow virtualenv's interpreter, the virtualenv made (and MLflow installed) first if it is missing."""
    python = venv / "bin" / "python"
    if python.exists() and _mlflow_version(python) == MLFLOW_VERSION:
        return python
    progress(f"making {venv} with mlflow=={MLFLOW_VERSION} (once; later runs reuse it)")
    venv.parent.mkdir(parents=True, exist_ok=True)
    for command in (
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"mlflow=={MLFLOW_VERSION}"],
    ):
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 (our own commands)
        if done.returncode != 0:
            raise BenchError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    if _mlflow_version(python) != MLFLOW_VERSION:
        raise BenchError(f"mlflow {MLFLOW_VERSION} did not install into {venv}")
    return python


def _mlflow_version(python: Path) -> str | None:
    done = subprocess.run(  # noqa: S603 (the virtualenv's interpreter)
        [str(python), "-c", "import importlib.metadata as m; print(m.version('mlflow'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else None


class PeerBench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.provenant = Bench(argparse.Namespace(db=args.db), workdir)
        self.mlflow: Child | None = None
        self.python = Path()
        self.tracking = ""
        self.experiment = ""
        self.seconds: dict[tuple[str, str], list[float]] = {
            (operation, side): [] for operation in OPERATIONS for side in (PROVENANT, MLFLOW)
        } | {("ceiling", PROVENANT): []}
        self.peaks: dict[str, int] = {}

    def prepare(self) -> None:
        self.python = mlflow_python(self.args.mlflow_venv)
        self.provenant.prepare()
        port = free_port()
        folder = self.workdir / "mlflow"
        folder.mkdir()
        command = [
            str(self.python.with_name("mlflow")), "server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
            "--serve-artifacts", "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1",
            "--port", str(port), "--workers", "1",
        ]  # fmt: skip
        self.mlflow = Child("mlflow server", command, env=clean_environment("MLFLOW_"), log_path=folder / "server.log")
        self.tracking = f"http://127.0.0.1:{port}"
        self.mlflow.wait_until(lambda: listening(port), f"answering on 127.0.0.1:{port}", timeout=180)
        self.experiment = self.child(MLFLOW, "experiment", Path())["experiment"]
        warm = self.workdir / "warm-up.bin"
        write_random_file(warm, MIB)
        for side in (PROVENANT, MLFLOW):  # both servers' first requests and imports, as long-running servers
            self.child(side, "publish", warm)
        warm.unlink()
        progress(f"mlflow server {self._mlflow_version_text()} on {self.tracking}")

    def _mlflow_version_text(self) -> str:
        return _mlflow_version(self.python) or "?"

    def child(self, side: str, operation: str, file: Path, **extra: object) -> dict:
        """Run one operation of one side in a fresh process; its JSON answer."""
        scratch = self.workdir / "scratch"
        scratch.mkdir(exist_ok=True)
        if side == PROVENANT:
            python, code = sys.executable, PROVENANT_CHILD
            env = clean_environment("MLFLOW_") | {"PYTHONPATH": str(REPO / "clients" / "python" / "src")}
            request = {"url": f"http://127.0.0.1:{self.provenant.port}", "token": self.provenant.token,
                       "project": PROJECT}  # fmt: skip
        elif operation == "experiment":
            python, env, request = str(self.python), clean_environment("MLFLOW_"), {}
            code = (
                "import json, sys, time\nfrom mlflow.tracking import MlflowClient\n"
                f"client = MlflowClient(tracking_uri={self.tracking!r})\n"
                "client.create_registered_model('peer-model')\n"
                "print(json.dumps({'experiment': client.create_experiment(f'peer-{time.time_ns()}')}))\n"
            )
        else:
            python, code, env = str(self.python), MLFLOW_CHILD, clean_environment("MLFLOW_")
            request = {"tracking": self.tracking, "experiment": self.experiment}
        request |= {"operation": operation, "file": str(file), "scratch": str(scratch), **extra}
        answer = json_child(
            code, request, what=f"{side} {operation}", cwd=self.workdir, env=env, timeout=CHILD_TIMEOUT, python=python
        )
        shutil.rmtree(scratch, ignore_errors=True)  # what a download wrote goes, with the child's cache
        return answer

    def run(self) -> None:
        size = self.args.size
        file = self.workdir / "model.bin"
        progress(f"writing {size_label(size)} of random bytes to {file}")
        write_random_file(file, size)
        try:
            for number in range(1, self.args.rounds + 1):
                progress(f"round {number} of {self.args.rounds}")
                for side in in_turn(number, PROVENANT, MLFLOW):
                    fresh_bytes(file)
                    uploaded = self.timed(side, "upload", file)
                    self.timed(side, "download", file, **({"version": uploaded["version"]} if side == PROVENANT
                                                          else {"run": uploaded["run"]}))  # fmt: skip
                    if side == PROVENANT:
                        self.timed(side, "ceiling", file, version=uploaded["version"])
                    fresh_bytes(file)
                    self.timed(side, "publish", file)
                    self.forget()
        finally:
            file.unlink()
        self.peaks = {
            PROVENANT: tree_peak_kb(self.provenant.server.pid),
            MLFLOW: tree_peak_kb(self.mlflow.pid),
        }

    def timed(self, side: str, operation: str, file: Path, **extra: object) -> dict:
        answer = self.child(side, operation, file, **extra)
        self.seconds[(operation, side)].append(answer["seconds"])
        progress(f"  {side} {operation}: {answer['seconds']:.2f} s")
        return answer

    def forget(self) -> None:
        """Disk space only: the stored copies of this round go (every upload sends new bytes anyway)."""
        for folder in (self.workdir / "mlflow" / "artifacts", self.provenant.var_dir):
            for path in folder.rglob("*"):
                if path.is_file() and path.stat().st_size >= self.args.size:
                    path.unlink()

    def cleanup(self) -> None:
        Child.stop_all()
        self.provenant.cleanup()


def report(bench: PeerBench, *, started_at: dt.datetime, seconds: float, command: str, code: str) -> str:
    size = bench.args.size
    lines = [
        *results_header(started_at=started_at, seconds=seconds, command=command, code=code),
        *machine_lines(
            ("Django", "granian", "httpx", "provenant-client"),
            note=f"; load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())} (shared machine)",
        ),
        f"- Provenant: granian, one worker, DEBUG off; database {bench.provenant.databases.version()}; local blob "
        f"folder. MLflow {bench._mlflow_version_text()} from its own virtualenv: `mlflow server --serve-artifacts "
        "--artifacts-destination <local folder> --workers 1`, SQLite backend store",
        f"- File: {size_label(size)} of random bytes in the page cache, {bench.args.rounds} round(s), the sides' "
        "order alternating by round; each upload new bytes; each operation timed alone in a fresh process",
        "",
        "| Operation | Provenant median s (MB/s) | MLflow median s (MB/s) | Provenant rounds (s) | MLflow rounds (s) | "
        "Ratio (MLflow / Provenant) | Goal | Result |",
        "| --- | ---: | ---: | --- | --- | ---: | --- | --- |",
    ]
    for operation in OPERATIONS:
        ours, theirs = bench.seconds[(operation, PROVENANT)], bench.seconds[(operation, MLFLOW)]
        ratio = median(theirs) / median(ours)
        goal = f"≥ {DOWNLOAD_TARGET:g}x" if operation == "download" else ""
        result = verdict(ratio >= DOWNLOAD_TARGET) if operation == "download" else "—"
        lines.append(
            f"| {operation} | {median(ours):.2f} ({size / median(ours) / MB:,.0f}) | "
            f"{median(theirs):.2f} ({size / median(theirs) / MB:,.0f}) | "
            f"{', '.join(f'{value:.2f}' for value in ours)} | {', '.join(f'{value:.2f}' for value in theirs)} | "
            f"{ratio:.2f}x | {goal} | {result} |"
        )
    ceiling, theirs = bench.seconds[("ceiling", PROVENANT)], bench.seconds[("download", MLFLOW)]
    lines += [
        "",
        f"Ceiling of a download to a file here, in the same rounds: one GET of Provenant's download URL written as it "
        f"comes (no hash, no fsync, as `curl -o`): {median(ceiling):.2f} s, rounds "
        f"{', '.join(f'{value:.2f}' for value in ceiling)}; MLflow's download took "
        f"{median(theirs) / median(ceiling):.2f}x that, so no client that writes the file could be more than "
        f"{median(theirs) / median(ceiling):.2f}x faster than MLflow's here, before hashing what it receives.",
    ]
    lines += [
        "",
        "| Server | Peak RSS at the end, VmHWM (MB) |",
        "| --- | ---: |",
        *(f"| {side} | {kb * 1024 / MB:.0f} |" for side, kb in bench.peaks.items()),
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    file_bench_arguments(parser, smoke_size=SMOKE_SIZE)
    parser.add_argument(
        "--mlflow-venv", type=Path, default=DEFAULT_VENV, help=f"MLflow's own virtualenv (default {DEFAULT_VENV})"
    )
    return file_bench_parsed(parser, argv, smoke_size=SMOKE_SIZE)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    return bench_main(__file__, argv, args, PeerBench, report, markers=(RESULTS_START, RESULTS_END))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
