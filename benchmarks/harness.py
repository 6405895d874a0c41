"""What every benchmark script needs around its own measurements, in one place so the scripts stop copying it:

- the run's progress lines and its one error (`BenchError`: the run cannot measure as asked);
- the figures' arithmetic and formatting shared by the tables (quantiles, milliseconds, pass/MISS);
- Django for the app, in this process or in a child's environment, and `manage.py` in a child;
- the PostgreSQL databases a benchmark makes for itself (`BenchDatabases`), marked so nothing else is dropped;
- child processes (servers, Celery workers) that die with the script, free ports, Redis databases, /proc figures;
- the facts about the code and the machine that open every results block, and the block's place in README.md.

Every script runs as `.venv/bin/python benchmarks/<script>.py`, so this folder is first on sys.path and
`from harness import ...` finds this file. Django is imported inside the functions that use it: a script chooses
the database and settings first (and permissions.py's baseline worker, the checkout whose app is imported).
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
README = REPO / "benchmarks" / "README.md"
#: The PostgreSQL server the benchmarks use when told no other: the developer's, on loopback.
LOCAL_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"
REDIS_DB_CANDIDATES = (13, 12, 11, 10, 9, 8)
STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
MANAGE_TIMEOUT = 600.0


class BenchError(Exception):
    """The benchmark cannot measure as asked (a process died, a request failed, a database is not its own): the
    message says why, and the run is invalid."""


# ---------------------------------------------------------------------------------------------- the run

_STARTED = time.monotonic()
_progress_on_stderr = False


def elapsed() -> float:
    """Seconds since the run began: since this module was first imported, at the top of the script."""
    return time.monotonic() - _STARTED


def progress(message: str) -> None:
    print(f"[{elapsed():7.1f}s] {message}", file=sys.stderr if _progress_on_stderr else sys.stdout, flush=True)


def progress_on_stderr() -> None:
    """For a worker process whose stdout carries its answers to the driver: its progress goes to stderr."""
    global _progress_on_stderr
    _progress_on_stderr = True


def failed(error: BenchError) -> int:
    """Say why the run failed; the script's exit status."""
    print(f"\nThe benchmark failed: {error}", file=sys.stderr)
    return 2


def run_bench(bench: Any, workdir: Path, *, keep_logs: bool = False) -> int | None:
    """`prepare()`, `run()` and always `cleanup()` a benchmark working in `workdir`: None when it finished (the
    folder removed, unless `keep_logs`), else the exit status of its failure, with the processes' logs kept in the
    folder for the post-mortem and the large files removed."""
    finished = False
    try:
        bench.prepare()
        bench.run()
        finished = True
    except BenchError as error:
        return failed(error)
    finally:
        bench.cleanup()
        if finished and not keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            for path in workdir.iterdir():
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                elif path.suffix != ".log":
                    path.unlink(missing_ok=True)
            print(f"Logs kept in {workdir}", file=sys.stderr)
    return None


def bench_main(
    script: str, argv: list[str], args: Any, bench_class: type, report: Callable[..., str], *, markers: tuple[str, str]
) -> int:
    """The whole run of `bench_class(args, workdir)` (`run_bench`) in a new work folder named after the script, then
    its results block (`report` given the bench and the header's facts) printed and, unless `args.no_readme`,
    written between the two `markers`: the `main` of every script built that way. `args.keep_logs`, when the
    script has it, keeps the logs."""
    command = command_line(script, argv)
    code = code_version()
    started_at = datetime.now(UTC)
    exit_on_sigterm()
    workdir = Path(tempfile.mkdtemp(prefix=f"provenant-bench-{Path(script).stem}-"))
    bench = bench_class(args, workdir)
    progress(f"work folder {workdir}")
    if (status := run_bench(bench, workdir, keep_logs=getattr(args, "keep_logs", False))) is not None:
        return status
    results = report(bench, started_at=started_at, seconds=elapsed(), command=command, code=code)
    show_results(results, start=markers[0], end=markers[1], write_readme=not args.no_readme)
    return 0


def exit_on_sigterm() -> None:
    """SIGTERM ends the run the way Ctrl-C does: through the finally blocks that stop every process and drop every
    database the run made."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


# ---------------------------------------------------------------------------------------------- figures


def short(number: int) -> str:
    """1000000 as "1m", 10000 as "10k": for database names and column heads."""
    for size, suffix in ((1_000_000, "m"), (1_000, "k")):
        if number % size == 0:
            return f"{number // size}{suffix}"
    return str(number)


def quantile(samples: list[float], share: float) -> float:
    """The sample at `share` of the way from the lowest to the highest (the nearest one; 0.5 is the median)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def fmt(ms: float) -> str:
    """Milliseconds with the digits that matter: two decimals under 10, one under 100, none above."""
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 100 else f"{ms:,.0f}"


def verdict(passed: bool | None) -> str:
    """A target's result in a table: pass, MISS, or a dash where the row has no target."""
    return "—" if passed is None else ("**pass**" if passed else "**MISS**")


# ---------------------------------------------------------------------------------------------- the results block


def file_bench_arguments(parser: Any, *, smoke_size: int) -> None:
    """The options of a benchmark that moves one file of random bytes several times: its size, the rounds, the
    database, `--no-readme` and `--smoke` (read back by `file_bench_parsed`)."""
    parser.add_argument("--size-gib", type=float, default=1.0, help="size of the file (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each side; medians (default 3)")
    parser.add_argument("--db", choices=("auto", "postgres", "sqlite"), default="auto", help="default: auto")
    parser.add_argument("--no-readme", action="store_true", help="print the results only")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help=f"a quick check that everything runs: {smoke_size // 2**20} MiB, 1 round, --no-readme",
    )


def file_bench_parsed(parser: Any, argv: list[str], *, smoke_size: int) -> Any:
    """The arguments `file_bench_arguments` declared, checked, with `size` in bytes (the smoke's own when asked)."""
    args = parser.parse_args(argv)
    if args.size_gib <= 0 or args.rounds < 1:
        parser.error("--size-gib must be positive, --rounds at least 1")
    if args.smoke:
        args.size, args.rounds, args.no_readme = smoke_size, 1, True
    else:
        args.size = int(args.size_gib * 2**30)
    return args


def command_line(script: str, argv: list[str]) -> str:
    """The command a results block says measured it, for the script whose `__file__` is `script`."""
    return " ".join([".venv/bin/python", f"benchmarks/{Path(script).name}", *argv])


def results_header(*, started_at: datetime, seconds: float, command: str, code: str) -> list[str]:
    """The opening lines every results block has: when, how long, the command that measured, and the code."""
    return [
        "## Results",
        "",
        f"Measured {started_at:%Y-%m-%d %H:%M} UTC in {seconds / 60:.1f} minutes by:",
        "",
        "```sh",
        command,
        "```",
        "",
        f"- Code: {code} (at the start of the run)",
    ]


def replace_results(readme: Path, start: str, end: str, results: str) -> None:
    """Put `results` between the `start` and `end` markers (appended with them when they are not there yet); the
    rest of the file, its hand-written analysis included, is left alone."""
    text = readme.read_text() if readme.exists() else "# Benchmarks\n"
    block = f"{start}\n{results}{end}"
    if start in text and end in text:
        head, _, rest = text.partition(start)
        _, _, tail = rest.partition(end)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    readme.write_text(text)


def show_results(results: str, *, start: str, end: str, write_readme: bool) -> None:
    """Print the results block and, unless the script was told --no-readme, write it between its markers."""
    print("\n" + results)
    if write_readme:
        replace_results(README, start, end, results)
        progress(f"results written to {README.relative_to(REPO)}")


def command_output(*argv: str) -> str:
    """What a command prints, or "" if it cannot run: a results block says "?" rather than failing a long run."""
    with suppress(OSError, subprocess.SubprocessError):
        return subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False).stdout  # noqa: S603
    return ""


def code_version(repo: Path = REPO) -> str:
    """The commit measured, and any uncommitted change outside benchmarks/ that the figures would include."""
    commit = command_output("git", "-C", str(repo), "rev-parse", "--short", "HEAD").strip() or "?"
    changed = [
        line[3:]
        for line in command_output("git", "-C", str(repo), "status", "--porcelain").splitlines()
        if not line[3:].startswith("benchmarks/")
    ]
    return f"commit {commit}" + (f" with uncommitted changes to {', '.join(changed)}" if changed else "")


def total_memory() -> str:
    """The machine's memory as `free -h` shows it."""
    return next((line.split()[1] for line in command_output("free", "-h").splitlines() if line.startswith("Mem:")), "?")


def cpu_model() -> str:
    """The CPU's model name as /proc/cpuinfo gives it."""
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def nproc() -> str:
    return command_output("nproc").strip() or "?"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: the machine is shared, and a busy one skews the figures."""
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


def software_line(packages: Iterable[str]) -> str:
    """The system, Python and the versions of the packages whose code the figures measure."""
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in packages)
    return f"- {platform.system()} {platform.release()}, Python {platform.python_version()}; {versions}"


def machine_lines(packages: Iterable[str], *, note: str = "") -> list[str]:
    """The machine as most results blocks describe it: CPU, cores and memory (then `note`), then the software."""
    return [
        f"- CPU: {cpu_model()}, `nproc` = {nproc()}; memory {total_memory()} (`free -h`){note}",
        software_line(packages),
    ]


# ---------------------------------------------------------------------------------------------- Django


def app_settings(
    *,
    database_url: str | None,
    var_dir: Path | str,
    secret_key: str,
    allowed_hosts: str = "testserver",
    debug: bool = False,
    log_level: str = "WARNING",
) -> dict[str, str]:
    """The app's environment variables for a benchmark: production settings (DEBUG off unless asked) over plain
    HTTP, a var folder of the run's own, and the given database (the settings' default when None)."""
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "true" if debug else "false",
        "DJANGO_SECRET_KEY": secret_key,
        "DJANGO_ALLOWED_HOSTS": allowed_hosts,
        "PROVENANT_HTTPS": "false",
        "PROVENANT_VAR_DIR": str(var_dir),
        "PROVENANT_LOG_LEVEL": log_level,
    } | ({"DATABASE_URL": database_url} if database_url else {})


def clean_environment(*also_dropped: str) -> dict[str, str]:
    """This process's environment without the app's own variables (and those starting with `also_dropped`), so
    nothing set in the developer's shell reaches the processes a benchmark starts."""
    dropped = ("DJANGO_", "PROVENANT_", "CELERY_", "DATABASE_URL", *also_dropped)
    return {name: value for name, value in os.environ.items() if not name.startswith(dropped)}


def django_setup(code: Path = REPO) -> None:
    """Set Django up in this process with the environment it has, importing the app from the checkout `code`."""
    if sys.path[:1] != [str(code)]:
        sys.path.insert(0, str(code))
    import django

    django.setup()


def configure_django(database_url: str, var_dir: str, *, code: Path = REPO, secret_key: str | None = None) -> None:
    """Django in this process on `database_url`, DEBUG off, for the test client's host (`app_settings`)."""
    secret_key = secret_key or secrets.token_urlsafe(50)
    os.environ.update(app_settings(database_url=database_url, var_dir=var_dir, secret_key=secret_key))
    django_setup(code)


def in_turn(number: int, *sides: Any) -> tuple[Any, ...]:
    """The order `sides` are measured in on round `number` (from 1): as given in odd rounds, reversed in even ones,
    so that what runs first (a cold cache, a machine that drifts) does not always favour the same side."""
    return sides if number % 2 else sides[::-1]


def checked_run(argv: list[str], *, what: str, cwd: Path, env: dict[str, str], timeout: float) -> str:
    """Run `argv` in a child process and return what it printed; BenchError naming `what`, with the end of its
    output, when it fails."""
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603 (our interpreters and code)
    if result.returncode != 0:
        raise BenchError(
            f"{what} failed (status {result.returncode}):\n{result.stdout[-1000:]}\n{result.stderr[-3000:]}"
        )
    return result.stdout


def json_child(
    code: str,
    request: dict[str, Any],
    *,
    what: str,
    cwd: Path,
    env: dict[str, str],
    timeout: float,
    python: str = sys.executable,
) -> dict[str, Any]:
    """Run `code` in a fresh `python` process with `request` as its one JSON argument; the JSON document it printed
    last. A child that fails raises BenchError naming `what`, with the end of its stderr."""
    printed = checked_run([python, "-c", code, json.dumps(request)], what=what, cwd=cwd, env=env, timeout=timeout)
    return json.loads(printed.strip().splitlines()[-1])


def manage(env: dict[str, str], *arguments: str) -> str:
    """`manage.py <arguments>` in a child process with the environment `env`; what it printed."""
    return checked_run(
        [sys.executable, "manage.py", *arguments],
        what=f"manage.py {' '.join(arguments)}",
        cwd=REPO,
        env=env,
        timeout=MANAGE_TIMEOUT,
    )


# ---------------------------------------------------------------------------------------------- databases


class BenchDatabases:
    """A benchmark's own databases on the server of `url`, named after the URL's database (or `default_base`).

    Each one it creates carries a comment starting with `marker`, naming the benchmark and what the database holds:
    a later run reuses one whose comment says it is complete, and nothing without the mark is ever dropped.
    """

    def __init__(self, url: str, *, default_base: str, marker: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in {"postgres", "postgresql"}:
            raise BenchError(f"{url} is no PostgreSQL URL")
        self.parts = parts
        self.base = parts.path.lstrip("/") or default_base
        self.marker = marker
        self.created: list[str] = []

    def url(self, name: str) -> str:
        return urlunsplit(self.parts._replace(path=f"/{name}"))

    @contextmanager
    def admin(self) -> Iterator[psycopg.Connection]:
        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            yield connection

    def answers(self) -> bool:
        """Whether the server takes a connection within 3 seconds."""
        try:
            with psycopg.connect(self.url("postgres"), connect_timeout=3):
                return True
        except psycopg.Error:
            return False

    def comment(self, name: str) -> str | None:
        """The database's comment, or None when there is no such database."""
        with self.admin() as connection:
            row = connection.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [name]
            ).fetchone()
        return None if row is None else row[0] or ""

    def set_comment(self, name: str, text: str) -> None:
        with self.admin() as connection:
            connection.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(text)))

    def mark_complete(self, name: str, parameters: dict) -> None:
        """Say in its comment that `name` holds what `parameters` describe, so a run with --reuse may use it."""
        self.set_comment(name, self._complete(parameters))

    def _complete(self, parameters: dict) -> str:
        return f"{self.marker}: {json.dumps(parameters, sort_keys=True)}"

    def create(self, name: str, *, template: str | None = None) -> None:
        """A new database (a copy of the database `template` when given), marked as this benchmark's."""
        with self.admin() as connection:
            if template is None:
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            else:
                connection.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
                )
        self.set_comment(name, f"{self.marker}: loading")
        self.created.append(name)

    def drop(self, name: str) -> None:
        if not (self.comment(name) or "").startswith(self.marker):
            raise BenchError(f"database {name} was not made by this benchmark; not dropping it")
        with self.admin() as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def drop_created(self, *, quiet: bool = False) -> None:
        """Drop the databases this run created, the newest first (copies before the template they came from)."""
        while self.created:
            name = self.created[-1]
            if not quiet:
                progress(f"dropping {name}")
            self.drop(name)
            self.created.pop()

    def migrated(self, name: str, parameters: dict, *, reuse: bool) -> bool:
        """Make `name` Django's database, migrated. With `reuse`, an earlier run's that is complete for
        `parameters` (answers True: its data is there) is used and kept; else a new one is made (answers False:
        the caller loads it, then marks it complete). One without this benchmark's mark is never touched."""
        from django.core.management import call_command

        comment = self.comment(name)
        if comment is not None and not comment.startswith(self.marker):
            raise BenchError(
                f"database {name} exists and was not made by this benchmark; choose another --database-url"
            )
        if reuse and comment == self._complete(parameters):
            progress(f"reusing {name}")
            use_database(name)
            call_command("migrate", verbosity=0, interactive=False)
            return True
        if comment is not None:
            progress(f"dropping the earlier benchmark database {name}")
            self.drop(name)
        progress(f"creating and migrating {name}")
        self.create(name)
        if reuse:
            self.created.remove(name)  # --reuse keeps what it makes, for the next run
        use_database(name)
        call_command("migrate", verbosity=0, interactive=False)
        return False

    def settings(self, names: list[str]) -> dict[str, str]:
        """The server's values of these settings (server_version among them if asked)."""
        with self.admin() as connection:
            rows = connection.execute(
                "SELECT name, current_setting(name) FROM unnest(%s::text[]) AS name", [names]
            ).fetchall()
        return dict(rows)


def use_database(name: str) -> None:
    """Point Django's default connection at `name` (closing the open one)."""
    from django.contrib.contenttypes.models import ContentType
    from django.db import connections

    connection = connections["default"]
    connection.close()
    connection.settings_dict["NAME"] = name
    ContentType.objects.clear_cache()


def claim_redis_db(candidates: tuple[int, ...] = REDIS_DB_CANDIDATES) -> tuple[str, Any]:
    """The first empty Redis database of `candidates` on 127.0.0.1:6379: the broker of this run alone."""
    import redis

    for number in candidates:
        url = f"redis://127.0.0.1:6379/{number}"
        client = redis.Redis.from_url(url, socket_timeout=5)
        if client.dbsize() == 0:
            return url, client
    raise BenchError(f"No empty Redis database among {candidates} on 127.0.0.1:6379.")


# ---------------------------------------------------------------------------------------------- processes

_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child between fork and exec: the kernel sends it SIGTERM if this script dies (even by SIGKILL)."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Child:
    """A process started by this script, in a process group of its own (gunicorn's workers included), with
    its output in a log file. Every one is registered so that `stop_all` ends it, however the run ends."""

    running: list[Child] = []

    def __init__(self, name: str, argv: list[str], *, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log = log_path.open("wb")
        try:
            self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
                argv,
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # one system call, resolved before the fork
            )
        except BaseException:
            self._log.close()
            raise
        Child.running.append(self)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:]) or "(empty)"

    def check_running(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise BenchError(f"{self.name} exited with status {code}; log {self.log_path}::\n{self.log_tail()}")

    def wait_until(self, ready: Callable[[], bool], what: str, timeout: float = STARTUP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            self.check_running()
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name} was not {what} after {timeout:.0f} s; its log ends:\n{self.log_tail()}")
            time.sleep(0.1)

    def _descendants(self) -> list[int]:
        found, pending = [], [self.process.pid]
        while pending and len(found) < 1000:
            pid = pending.pop()
            for child in children_of(pid):
                found.append(child)
                pending.append(child)
        return found

    def stop(self) -> None:
        """SIGTERM to the whole group while its leader lives, SIGKILL to what is left after STOP_TIMEOUT."""
        try:
            descendants = self._descendants()
            if self.process.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGTERM)
                try:
                    self.process.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    with suppress(ProcessLookupError):
                        os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(timeout=STOP_TIMEOUT)
            # A worker its leader left behind: only processes seen as its descendants, still in its group.
            for pid in descendants:
                with suppress(ProcessLookupError, PermissionError):
                    if os.getpgid(pid) == self.process.pid:
                        os.kill(pid, signal.SIGKILL)
        finally:
            self._log.close()
            if self in Child.running:
                Child.running.remove(self)

    @classmethod
    def stop_all(cls) -> None:
        for child in reversed(list(cls.running)):
            try:
                child.stop()
            except Exception as error:  # keep stopping the others
                print(f"could not stop {child.name} (pid {child.pid}): {error}", file=sys.stderr)


def celery_worker(name: str, *, pool: list[str], hostname: str, env: dict[str, str], log_path: Path) -> Child:
    """A Celery worker of the app on the default queue, as README's production command with the pool stated, at
    INFO so its log shows each task's outcome; returned once it says it is ready."""
    worker = Child(
        name,
        [sys.executable, "-m", "celery", "-A", "config", "worker", *pool, "--loglevel=INFO", "-Q", "default",
         "--without-gossip", "--without-mingle", "--without-heartbeat", f"--hostname={hostname}"],
        env=env,
        log_path=log_path,
    )  # fmt: skip
    worker.wait_until(lambda: " ready." in worker.log_text(), "ready")
    return worker


GUNICORN_TIMEOUT = 600


#: As deployed (README: Production): granian's own allocator (jemalloc, for its request buffers) returns freed pages
#: at once instead of keeping them for 10 s per arena, which raised a worker's peak ~1 MB every 256 MiB upload.
GRANIAN_ENV = {"_RJEM_MALLOC_CONF": "narenas:1,dirty_decay_ms:1000,muzzy_decay_ms:0"}


def web_server_command(server: str, app: str, port: int, *, chdir: Path | None = None) -> list[str]:
    """One worker process of `server` serving the WSGI `app` ("module:callable") on 127.0.0.1:`port`."""
    if server == "granian":
        command = [sys.executable, "-m", "granian", "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port),
                   "--workers", "1"]  # fmt: skip
        return command + (["--working-dir", str(chdir)] if chdir else []) + [app]
    command = [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "1",
               "--timeout", str(GUNICORN_TIMEOUT)]  # fmt: skip
    return command + (["--chdir", str(chdir)] if chdir else []) + [app]


def serve_app(
    name: str, *, env: dict[str, str], log_path: Path, answers: Callable[[int], bool], server: str = "granian"
) -> tuple[Child, int]:
    """The app (config.wsgi) under one worker of `server` on a free loopback port, with the environment `env`;
    returned with its port once it listens and `answers(port)` (a request the benchmark needs to succeed)."""
    port = free_port()
    child = Child(
        name,
        web_server_command(server, "config.wsgi:application", port),
        env=env | {"PYTHONUNBUFFERED": "1"} | (GRANIAN_ENV if server == "granian" else {}),
        log_path=log_path,
    )
    child.wait_until(lambda: listening(port) and answers(port), f"answering on 127.0.0.1:{port}")
    return child, port


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def children_of(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak resident set) of a live process, in kB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    return values


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a live process (None: this one)."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
