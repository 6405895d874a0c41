"""`provenant`: the client on the command line, for people at a terminal and for shell scripts.

Every command prints for a person by default and, with `--json`, one JSON document a script can parse. A refusal
by the server prints `error: <detail> (<code>)` on stderr and exits 1, never a traceback: a 404 or a missing role
is an answer, not a crash. Usage errors exit 2 (argparse's convention); Ctrl-C exits 130 (the shell's).

The server, token and profile come from `--url`, `--token`, `--profile`, else the environment or the default
profile that `provenant login` saved (see `config`).

Why one module over 800 lines: every command is a short handler next to the parser that names its options, so a
reader checks a command's words and behaviour in one place. The longest, `provenant run`, is the one candidate to
move out (with its child process, environment and output publishing) if it grows further.
"""

from __future__ import annotations

import argparse
import datetime
import getpass
import importlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from provenant_client import audit, config
from provenant_client.client import Client
from provenant_client.errors import ProvenantError
from provenant_client.runs import (
    RUN_ID_VARIABLE,
    DirtyWorkTree,
    InterpreterUnreadable,
    Run,
    RunStateError,
    interpreter_environment,
)
from provenant_client.signing import SigningUnavailable

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a command stopped by Ctrl-C
LISTS = {
    # what `ls` lists: the endpoint, and the columns a person reads
    "projects": ("/projects/", ("slug", "name")),
    "artifacts": ("/artifacts/", ("id", "project", "name", "kind", "version_count")),
    "versions": ("/artifact-versions/", ("id", "project", "artifact_name", "number", "digest", "size")),
    "models": ("/models/", ("id", "project", "name", "production_version")),
}


class CommandError(Exception):
    """A failure the command explains itself (a file that is not there, a missing argument): exit 1."""


# Output -------------------------------------------------------------------------------------------------------------


def human_size(size: float) -> str:
    value, unit = float(size), "B"
    for larger in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, larger
    return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"


def human_duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class ProgressLine:
    """A one-line transfer meter on stderr (bytes, speed, time left), redrawn in place.

    Drawn only on a terminal (a log file or a pipe would fill with carriage returns) and only once the transfer has
    lasted a second (a small file would flash a bar for nothing). Redrawn at most ten times a second. The clock
    starts at the first block, not at creation: hashing a large file before its upload is not transfer time, and
    the speed of a resumed upload counts only the bytes this process sends.
    """

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.started: float | None = None
        self.first = 0
        self.drawn_at = 0.0
        self.drawn = False

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if self.started is None:
            self.started, self.first = now, done
            return
        elapsed = now - self.started
        if elapsed < 1.0 or now - self.drawn_at < 0.1 or not self.stream.isatty():
            return
        speed = (done - self.first) / elapsed
        line = f"{self.label}: {human_size(done)}"
        if total:
            line += f" / {human_size(total)} ({100 * done // total}%)"
        line += f"  {human_size(speed)}/s"
        if total and speed > 0:
            line += f"  {human_duration((total - done) / speed)} left"
        self.stream.write(f"\r{line:<79}")
        self.stream.flush()
        self.drawn_at, self.drawn = now, True

    def finish(self) -> None:
        """End the line, so what is printed next starts on a fresh one."""
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False


def emit(args: argparse.Namespace, document: Any, text: str) -> None:
    """Print `document` as JSON with `--json`, else `text`."""
    print(json.dumps(document, indent=2, sort_keys=True) if args.json else text)


def table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    """Rows as aligned columns under a header, for a person; empty lists say so rather than print a bare header."""
    if not rows:
        return "(none)"
    cells = [[str(column).upper() for column in columns]]
    cells += [["-" if row.get(column) is None else str(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(line[index]) for line in cells) for index in range(len(columns))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in cells)


# Commands -----------------------------------------------------------------------------------------------------------


def connect(args: argparse.Namespace) -> Client:
    return Client(args.url, args.token, profile=args.profile)


def command_login(args: argparse.Namespace) -> int:
    if not args.url:
        raise CommandError("login needs the server's URL: provenant login URL (or --url URL)")
    token = args.token or os.environ.get("PROVENANT_TOKEN")
    if not token:
        if not sys.stdin.isatty():
            raise CommandError("no token: pass --token, set PROVENANT_TOKEN, or run login at a terminal")
        token = getpass.getpass("Token: ").strip()
    name = args.profile or config.DEFAULT_PROFILE
    # A token the server refuses is not saved: the first request would fail anyway, later and less clearly.
    with Client(args.url, token) as client:
        client.get("/projects/", page_size=1)
        url = client.server
    path = config.save_profile(name, url=url, token=token, make_default=args.make_default)
    default = config.read_config(path).get("default")
    emit(
        args,
        {"profile": name, "url": url, "config": str(path), "default": default == name},
        f"Logged in to {url}; saved as profile {name!r}{' (the default)' if default == name else ''} in {path}",
    )
    return 0


def command_whoami(args: argparse.Namespace) -> int:
    with connect(args) as client:
        authenticated = "Authorization" in client.http.headers
        me = client.whoami() if authenticated else None
        document = {"url": client.server, "profile": client.profile, "authenticated": authenticated, "me": me}
    if me is None:
        emit(args, document, f"{client.server}: anonymous (no token; run `provenant login`)")
        return 0
    kind = "service account" if me["service_account"] else "administrator" if me["superuser"] else "user"
    profile = client.profile or "(none: environment or --token)"
    lines = [f"{me['username']} ({kind}) on {client.server}, profile {profile}"]
    token = me.get("token")
    if token:
        lines.append(f"token     {token['name']!r} ({token['prefix']}…), expires {token['expires_at']}")
    for project in me["projects"]:
        roles = ", ".join(
            role["role"]
            + (f" on {role['artifact']}" if role["artifact"] else "")
            + (f" through {role['group']}" if role["group"] else "")
            for role in project["roles"]
        )
        lines.append(f"{project['project']:<24}  {roles}")
    if not me["projects"] and not me["superuser"]:
        lines.append("no roles yet: ask a project's maintainer")
    emit(args, document, "\n".join(lines))
    return 0


TOKEN_COLUMNS = ("id", "prefix", "name", "user", "scope", "project", "expires_at", "last_used_at", "status")


def command_token_list(args: argparse.Namespace) -> int:
    with connect(args) as client:
        tokens = client.get("/tokens/")
    rows = [{**token, "prefix": f"{token['prefix']}…"} for token in tokens]
    emit(args, tokens, table(rows, TOKEN_COLUMNS))
    return 0


def command_token_issue(args: argparse.Namespace) -> int:
    if args.days < 1 or args.days > 366:
        raise CommandError(f"--days takes 1 to 366, not {args.days}: every token expires within 366 days")
    expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=args.days)
    body: dict[str, Any] = {"name": args.name, "scope": args.scope, "expires_at": expires.isoformat()}
    if args.project:
        body["project"] = args.project
    if args.user:
        body["user"] = args.user
    with connect(args) as client:
        token = client.post("/tokens/", body)
    where = f", project {token['project']}" if token["project"] else ""
    emit(
        args,
        token,
        f"{token['token']}\n"
        f"(token {token['id']} {token['name']!r} of {token['user']}: {token['scope']}{where}, expires "
        f"{token['expires_at']}; the secret above is shown this once)",
    )
    return 0


def command_token_revoke(args: argparse.Namespace) -> int:
    with connect(args) as client:
        token = client.post(f"/tokens/{args.id}/revoke/", None)
    emit(
        args, token, f"Revoked token {token['id']} ({token['prefix']}… {token['name']!r}): its next request answers 401"
    )
    return 0


def parse_metadata(pairs: Sequence[str]) -> dict[str, Any]:
    """`key=value` pairs; a value that reads as JSON (a number, true, a list) is kept as that, else as text."""
    metadata: dict[str, Any] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise CommandError(f"--metadata takes key=value, not {pair!r}")
        try:
            metadata[key] = json.loads(value)
        except ValueError:
            metadata[key] = value
    return metadata


def command_push(args: argparse.Namespace) -> int:
    if os.path.isdir(args.path):
        raise CommandError(f"{args.path} is a folder: push takes one file (archive a folder first)")
    if not os.path.isfile(args.path):
        raise CommandError(f"{args.path}: no such file")
    if (args.sign_certificate or args.sign_chain) and not args.sign_key:
        raise CommandError("--sign-certificate and --sign-chain sign with --sign-key's private key: give it too")
    metadata = parse_metadata(args.metadata) if args.metadata else None
    progress = ProgressLine(f"push {os.path.basename(args.path)}")
    with connect(args) as client:
        try:
            pushed = client.push(
                args.path,
                project=args.project,
                artifact=args.artifact,
                kind=args.kind,
                metadata=metadata,
                progress=progress,
                sign_key=args.sign_key,
                sign_certificate=args.sign_certificate,
                sign_chain=args.sign_chain or (),
            )
        except SigningUnavailable as missing:
            raise CommandError(str(missing)) from None
        except KeyboardInterrupt:
            progress.finish()
            print(
                "interrupted: run the same `provenant push` again to resume. A file of "
                f"{human_size(client.upload_session_threshold)} or more continues from its upload session saved "
                f"under {client.cache.root / 'uploads'}; a smaller one is sent again whole.",
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED
        finally:
            progress.finish()
    version = pushed.version
    if pushed.already_held:
        sent = "the project already held these bytes: nothing sent"
    elif pushed.resumed_from:
        sent = f"resumed at {human_size(pushed.resumed_from)}, sent {human_size(pushed.bytes_sent)}"
    else:
        sent = f"sent {human_size(pushed.bytes_sent)}"
    emit(
        args,
        {
            "digest": pushed.digest,
            "size": pushed.size,
            "bytes_sent": pushed.bytes_sent,
            "already_held": pushed.already_held,
            "resumed_from": pushed.resumed_from,
            "version": version,
            "signature": pushed.signature,
        },
        f"{version['project']}/{version['artifact_name']} v{version['number']} (version {version['id']})\n"
        f"{pushed.digest}, {human_size(pushed.size)}; {sent}"
        + (f"\nsigned: signature {pushed.signature['id']} attached, checked by the server" if pushed.signature else ""),
    )
    return 0


def command_pull(args: argparse.Namespace) -> int:
    progress = ProgressLine(f"pull {args.ref}")
    with connect(args) as client:
        try:
            path = client.pull(args.ref, args.dest, project=args.project, progress=progress)
        except ValueError as error:  # a ref that is neither an id nor a digest, or a digest without a project
            raise CommandError(str(error)) from error
        finally:
            progress.finish()
    emit(args, {"path": str(path)}, str(path))
    return 0


def command_ls(args: argparse.Namespace) -> int:
    path, columns = LISTS[args.what]
    params: dict[str, Any] = {}
    if args.what != "projects":
        params["project"] = args.project
    elif args.project:
        raise CommandError("ls projects takes no --project")
    with connect(args) as client:
        rows = list(client.iterate(path, **params))
    emit(args, rows, table(rows, columns))
    return 0


def lineage_tree(graph: dict[str, Any]) -> list[str]:
    """The lineage graph as indented lines: what made the root (upstream), then what it made (downstream).

    Each node sits under the one it was reached from; a node reached twice (a diamond) is printed in full once and
    then named with `(see above)`, so a wide graph stays readable and a cycle cannot recurse.
    """
    nodes = {node["key"]: node for node in [graph["root"], *graph["nodes"]]}
    parents: dict[str, list[str]] = {}
    children: dict[str, list[str]] = {}
    for edge in graph["edges"]:
        parents.setdefault(edge["target"], []).append(edge["source"])
        children.setdefault(edge["source"], []).append(edge["target"])

    def describe(node: dict[str, Any]) -> str:
        extra = node.get("status") or node.get("digest") or ""
        return f"{node['type'].replace('_', ' ')} {node['id']}: {node['label']}" + (f"  [{extra}]" if extra else "")

    def walk(key: str, links: dict[str, list[str]], direction: str, depth: int, seen: set[str]) -> Iterator[str]:
        for linked in sorted(links.get(key, [])):
            node = nodes.get(linked)
            if node is None or node["direction"] != direction:
                continue
            if linked in seen:
                yield "  " * depth + describe(node) + "  (see above)"
                continue
            seen.add(linked)
            yield "  " * depth + describe(node)
            yield from walk(linked, links, direction, depth + 1, seen)

    root = graph["root"]["key"]
    lines = [describe(graph["root"])]
    upstream = list(walk(root, parents, "upstream", 2, set()))
    downstream = list(walk(root, children, "downstream", 2, set()))
    lines += ["  made from:", *(upstream or ["    (nothing recorded)"])]
    lines += ["  used by:", *(downstream or ["    (nothing recorded)"])]
    if graph.get("hidden_nodes"):
        lines.append(f"  ({graph['hidden_nodes']} more you may not see)")
    return lines


def command_show(args: argparse.Namespace) -> int:
    with connect(args) as client:
        version = client.get(f"/artifact-versions/{args.version_id}/")
        lineage = client.lineage(args.version_id)
    details = [
        f"{version['project']}/{version['artifact_name']} v{version['number']} ({version['kind']})",
        f"digest    {version['digest']} ({human_size(version['size'])}, {version['blob_state']})",
        f"created   {version['created_at']} by {version.get('created_by') or '-'}",
        f"run       {version['run'] if version.get('run') is not None else '-'}",
    ]
    if version.get("metadata"):
        details.append("metadata  " + json.dumps(version["metadata"], sort_keys=True))
    emit(args, {"version": version, "lineage": lineage}, "\n".join([*details, "lineage", *lineage_tree(lineage)]))
    return 0


def command_lineage(args: argparse.Namespace) -> int:
    with connect(args) as client:
        try:
            graph = client.lineage(args.ref, project=args.project, direction=args.direction, depth=args.depth)
        except ValueError as error:  # a reference without its project
            raise CommandError(str(error)) from error
    emit(args, graph, "\n".join(lineage_tree(graph)))
    return 0


def command_status(args: argparse.Namespace) -> int:
    with connect(args) as client:
        waiting = client.awaiting_me(project=args.project)
    rows = [
        {
            "id": request["id"],
            "project": request["project"],
            "model": f"{request['model_name']} v{request['version']}",
            "to": request["target_stage"],
            "requested_by": request["requested_by"],
            "expires_at": request["expires_at"],
        }
        for request in waiting
    ]
    text = table(rows, ("id", "project", "model", "to", "requested_by", "expires_at"))
    if not rows:
        text = "Nothing awaits your review."
    emit(args, waiting, text)
    return 0


def decide(args: argparse.Namespace, decision: str) -> int:
    with connect(args) as client:
        if decision == "approve":
            request = client.approve(args.id, comment=args.comment or "")
        else:
            request = client.reject(args.id, comment=args.comment)
    emit(
        args,
        request,
        f"promotion {request['id']} ({request['model_name']} v{request['version']} to {request['target_stage']}): "
        f"{request['state']}",
    )
    return 0


def command_approve(args: argparse.Namespace) -> int:
    return decide(args, "approve")


def command_reject(args: argparse.Namespace) -> int:
    return decide(args, "reject")


def command_promote(args: argparse.Namespace) -> int:
    with connect(args) as client:
        request = client.request_promotion(args.model_version, stage=args.stage, justification=args.justification)
    emit(
        args,
        request,
        f"promotion {request['id']} requested: {request['model_name']} v{request['version']} to "
        f"{request['target_stage']}, {request['state']}; {request['approvals_required']} approval(s) required",
    )
    return 0


def command_register(args: argparse.Namespace) -> int:
    if args.mlflow_run is not None:
        # mlflow is an optional extra (and a second to import): loaded only by the command that needs it.
        from provenant_client import mlflow_register

        if args.version is not None:
            raise CommandError("register either an artifact version or an MLflow run (--mlflow-run), not both")
        with connect(args) as client:
            registration = mlflow_register.register_from_mlflow(
                client, run_id=args.mlflow_run, model=args.model, project=args.project, path=args.path,
                tracking_uri=args.tracking_uri,
            )  # fmt: skip
        emit(args, registration.document(), mlflow_register.describe(registration))
        return 0
    if args.version is None:
        raise CommandError("name the artifact version to register, or an MLflow run with --mlflow-run RUN_ID")
    with connect(args) as client:
        try:
            registered = client.register(args.version, model=args.model, project=args.project)
        except ValueError as error:  # a reference without its project
            raise CommandError(str(error)) from error
    emit(
        args,
        registered,
        f"model version {registered['id']}: {registered['model_name']} v{registered['number']} "
        f"({registered['stage']}), artifact version {registered['artifact_version']}",
    )
    return 0


# provenant run ------------------------------------------------------------------------------------------------------

#: Signals the wrapper passes on to the command it runs, so stopping the wrapper stops the command.
FORWARDED_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT") if hasattr(signal, name)
)


def _terminal_delivers_interrupts_to_child() -> bool:
    """Whether a Ctrl-C at the terminal reaches the child without our help: the child shares our process group,
    so when that group is the terminal's foreground one, the terminal signals both; forwarding would deliver the
    child a second interrupt in the middle of its own clean-up."""
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except (OSError, AttributeError, ValueError):
        return False


def run_child(command: Sequence[str], env: dict[str, str], *, stdout_to_stderr: bool = False) -> int:
    """Run `command` with `env`, passing on the signals that would stop the wrapper, and return its exit status
    (a shell's 128 + N when a signal N ended it). With `stdout_to_stderr` the command's standard output goes where
    its errors go (file descriptor 2), leaving the wrapper's for its one JSON document."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        # The user's own command, as a shell would run it.
        child = subprocess.Popen(list(command), env=env, stdout=2 if stdout_to_stderr else None)  # noqa: S603
    except OSError as error:
        raise CommandError(f"cannot run {command[0]!r}: {error.strerror or error}") from error
    previous = {}

    def forward(number: int, _frame: Any) -> None:
        if number == signal.SIGINT and _terminal_delivers_interrupts_to_child():
            return
        if child.poll() is None:
            child.send_signal(number)

    for number in FORWARDED_SIGNALS:
        previous[number] = signal.signal(number, forward)
    try:
        status = child.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return 128 - status if status < 0 else status


#: An interpreter's file name: python, python3, python3.11 (and python.exe on Windows).
PYTHON_NAME = re.compile(r"python(?:\d+(?:\.\d+)*)?(?:\.exe)?", re.IGNORECASE)


def command_interpreter(command: Sequence[str]) -> str | None:
    """The Python interpreter `command` starts (its first word found as the shell would), or None for another
    program."""
    found = shutil.which(command[0])
    if found is None:
        return None
    if PYTHON_NAME.fullmatch(os.path.basename(found)):
        return found
    try:
        return found if os.path.samefile(found, sys.executable) else None
    except OSError:
        return None


def command_environment(command: Sequence[str]) -> dict[str, Any]:
    """The Python side of the run's environment: the command's interpreter's (asked once) when the command is a
    Python interpreter, else the wrapper's own, marked as such in `python_source`. Hardware is the wrapper's."""
    python = command_interpreter(command)
    if python is None:
        return {"python_source": "wrapper: the command is not a Python interpreter"}
    try:
        described = interpreter_environment(python)
    except InterpreterUnreadable as error:
        return {"python_source": f"wrapper: {error}"}
    return {**described, "python_source": "command"}


def default_run_name(command: Sequence[str]) -> str:
    """What the command runs: the module of `-m`, else its first argument that is a file (the script), else the
    program's name (`python train.py --epochs 3` is `train.py`, not `3`)."""
    arguments = list(command[1:])
    if "-m" in arguments[:-1]:
        return arguments[arguments.index("-m") + 1]
    script = next((argument for argument in arguments if os.path.isfile(argument)), None)
    return Path(script or command[0]).name[:RUN_NAME_MAX]


RUN_NAME_MAX = 200  # the server's limit on a run's name
#: The server's rule for artifact names (core/validators.py name_validator), checked before any byte is sent.
ARTIFACT_NAME = re.compile(r"(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def output_files(folder: Path) -> dict[Path, tuple[int, int]]:
    """The files under `folder` (hidden files and folders left out), each with its size and modification time."""
    files = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            stat = path.stat()
            files[relative] = (stat.st_size, stat.st_mtime_ns)
    return files


def output_name(relative: Path) -> str:
    """The artifact an output file is published as: its path below the output folder, `/` turned to `-`, suffix
    kept (`model.pt`, `reports/eval.json` -> `reports-eval.json`), so `model.pt` and `model.json` stay apart."""
    return "-".join(relative.parts)


def plan_outputs(folder: Path, before: dict[Path, tuple[int, int]]) -> tuple[list[tuple[Path, str]], list[str]]:
    """The files the command wrote or changed under `folder`, each with its artifact name, and the files that were
    there before and left as they were (`before`: not its outputs). Raises CommandError, before anything is sent,
    for a name the server would refuse or two files that would land in one artifact."""
    planned: list[tuple[Path, str]] = []
    unchanged: list[str] = []
    owners: dict[str, Path] = {}
    refused: list[str] = []
    for relative, signature in output_files(folder).items():
        if before.get(relative) == signature:
            unchanged.append(str(relative))
            continue
        name = output_name(relative)
        if not ARTIFACT_NAME.fullmatch(name):
            refused.append(f"{relative} (artifact name {name!r}: use letters, digits, '.', '_', '-', no '..')")
        elif name in owners:
            refused.append(f"{owners[name]} and {relative} would both be artifact {name!r}")
        owners.setdefault(name, relative)
        planned.append((relative, name))
    if refused:
        raise CommandError("; ".join(refused))
    return planned, unchanged


def run_outcome(exit_status: int, problems: Sequence[str], interrupted: bool) -> tuple[str, str | None]:
    """The status a wrapped run ends with, and why: completed only when the command exited 0 and its outputs were
    published; cancelled when it or the publishing was interrupted; failed otherwise."""
    reasons = list(problems)
    if exit_status == EXIT_INTERRUPTED:
        reasons.insert(0, "interrupted (SIGINT)")
    elif exit_status >= 128:
        reasons.insert(0, f"killed by signal {exit_status - 128}")
    elif exit_status:
        reasons.insert(0, f"exit status {exit_status}")
    if interrupted or exit_status == EXIT_INTERRUPTED:
        return "cancelled", "; ".join(reasons)
    return ("failed", "; ".join(reasons)) if reasons else ("completed", None)


def command_run(args: argparse.Namespace) -> int:
    command = list(args.child_command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise CommandError("name the command to run after --: provenant run --project P -- python train.py")
    output = Path(args.output)
    with connect(args) as client:
        run = client.start_run(
            project=args.project, name=args.name or default_run_name(command), allow_dirty=args.allow_dirty,
            entry_point=" ".join(command)[:500], environment=command_environment(command),
        )  # fmt: skip
        run.flush()  # sent now, as running: the command's own logging attaches to it by id
        print(f"run {run.id} ({run.external_id}) in {args.project}: {' '.join(command)}", file=sys.stderr)
        try:
            output.mkdir(parents=True, exist_ok=True)
            before = output_files(output)
            status = run_child(command, child_environment(args, client, run, output), stdout_to_stderr=args.json)
        except KeyboardInterrupt:
            run.finish("cancelled", failure="interrupted before the command started")
            raise
        except (CommandError, OSError) as error:  # the run was sent as running: it must not stay so
            run.finish("failed", failure=f"cannot start: {error}")
            raise CommandError(f"{error} (run {run.id} failed)") from error
        pushed: list[dict[str, Any]] = []
        unchanged: list[str] = []
        problems: list[str] = []
        interrupted = False
        try:
            planned, unchanged = plan_outputs(output, before)
            for relative, name in planned:
                result = run.log_artifact(output / relative, name=name, kind=args.kind)
                pushed.append({"path": str(relative), "artifact": name, "version": result.version})
        except KeyboardInterrupt:
            interrupted = True
            problems.append("interrupted while publishing outputs")
        except ProvenantError as error:
            problems.append(f"outputs not published: {error.detail}")
        except (CommandError, OSError) as error:
            problems.append(f"outputs not published: {error}")
        state, reason = run_outcome(status, problems, interrupted)
        record = run.finish(state, failure=reason)
    lines = [f"run {record['id']} {record['status']}" + (f": {record['failure_reason']}" if reason else "")]
    lines += [f"  {item['path']} -> {item['artifact']} v{item['version']['number']}" for item in pushed]
    if unchanged:
        lines.append(f"  not published, there before the command and left unchanged: {', '.join(unchanged)}")
    document = {"run": record, "exit_status": status, "artifacts": pushed, "unchanged": unchanged}
    emit(args, document, "\n".join(lines))
    if problems:
        print(f"error: {'; '.join(problems)}", file=sys.stderr)
    if interrupted:
        return EXIT_INTERRUPTED
    return status or (EXIT_ERROR if problems else 0)


def child_environment(args: argparse.Namespace, client: Client, run: Run, output: Path) -> dict[str, str]:
    """The wrapper's environment, with what the command needs to log to its run and to find its output folder."""
    env = dict(os.environ)
    env.update(
        {
            RUN_ID_VARIABLE: str(run.id),
            "PROVENANT_URL": client.server,
            "PROVENANT_PROJECT": args.project,
            "PROVENANT_OUTPUT_DIR": str(output.resolve()),
        }
    )
    token = client.http.headers.get("Authorization", "").partition(" ")[2]
    if token:
        env["PROVENANT_TOKEN"] = token
    return env


# provenant audit ----------------------------------------------------------------------------------------------------


def command_audit_export(args: argparse.Namespace) -> int:
    filters = {name: getattr(args, name) for name in AUDIT_FILTERS if getattr(args, name) is not None}
    with connect(args) as client:
        path = client.audit_export(args.dest, **filters)
        if args.public_key_file:
            Path(args.public_key_file).write_text(client.audit_public_key()["pem"])
    size = path.stat().st_size
    document = {"path": str(path), "bytes": size, "filtered": bool(filters), "public_key_file": args.public_key_file}
    text = f"{path}: {human_size(size)}" + (" (filtered: " + ", ".join(f"{k}={v}" for k, v in filters.items()) + ")"
                                               if filters else "")  # fmt: skip
    emit(args, document, text)
    return 0


def command_audit_verify(args: argparse.Namespace) -> int:
    """Exit 0 when the export verifies, 1 when it does not (naming the first bad sequence number), 2 when it could
    not be checked: the standalone verifier's statuses, so scripts can tell the three apart."""
    verifier = audit.verifier()
    try:
        heads = [json.loads(Path(path).read_text()) for path in args.tree_head]
        report = audit.verify_file(args.export, public_key=[Path(key) for key in args.public_key], tree_heads=heads)
    except verifier.VerificationFailed as failure:
        emit(args, {"ok": False, "failure": str(failure)}, f"FAILED: {failure}")
        return EXIT_ERROR
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    document = {"ok": True, "entries": report.entries, "warnings": report.warnings, "summary": report.summary()}
    emit(args, document, report.summary())
    return 0


def command_attestation_verify(args: argparse.Namespace) -> int:
    """The standalone verifier's statuses: 0 verified, 1 not (saying why), 2 could not be checked."""
    try:
        verifier = importlib.import_module("provenant_client.attestation_verify")
    except ImportError as error:
        raise ImportError(
            f"Verifying an attestation needs the client's 'audit' extra ({error}): "
            "pip install 'provenant-client[audit]'"
        ) from error
    try:
        report = verifier.verify_paths(
            Path(args.attestation), [Path(key) for key in args.key], Path(args.file) if args.file else None
        )
    except verifier.VerificationFailed as failure:
        emit(args, {"ok": False, "failure": str(failure)}, f"FAILED: {failure}")
        return EXIT_ERROR
    except (OSError, ValueError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    document = {
        "ok": True,
        "keyid": report.keyid,
        "file": report.file_checked,
        "statement": report.statement,
        "warnings": report.warnings,
    }
    emit(args, document, report.summary())
    return 0


def command_import_mlflow(args: argparse.Namespace) -> int:
    """Copy an MLflow tracking server's history into a project (provenant_client.mlflow_import says what maps to
    what); progress on stderr, the summary on stdout."""
    try:
        # The importer needs mlflow, the client's optional extra: loaded here, so every other command works without.
        importer_module = importlib.import_module("provenant_client.mlflow_import")
    except ImportError as error:
        raise ImportError(
            f"Importing from MLflow needs the client's 'mlflow' extra ({error}): pip install 'provenant-client[mlflow]'"
        ) from error
    from mlflow.exceptions import MlflowException  # importable: the importer above loaded mlflow

    with connect(args) as client:
        importer = importer_module.MlflowImporter(client, tracking_uri=args.tracking_uri, project=args.project)
        try:
            summary = importer.import_experiments(args.experiment)
            if args.registered_models:
                importer.import_registered_models()
        except MlflowException as error:
            raise CommandError(f"MLflow at {args.tracking_uri}: {error.message}") from error
    emit(args, summary.as_dict(), summary.text())
    return 0


AUDIT_FILTERS = ("project", "artifact", "action", "actor", "object_type", "object_id", "since", "until")


# Parsing ------------------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    # The global options are accepted before or after the command (`provenant --json ls projects` and
    # `provenant ls projects --json`): each subparser shares them, with SUPPRESS so that a value given before the
    # command is not overwritten by the subparser's default.
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("--url", default=argparse.SUPPRESS, help="the server (default: PROVENANT_URL or profile)")
    shared.add_argument("--token", default=argparse.SUPPRESS, help="a bearer token (default: PROVENANT_TOKEN)")
    shared.add_argument("--profile", default=argparse.SUPPRESS, help="a profile saved by login")
    shared.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON for scripts")

    parser = argparse.ArgumentParser(
        prog="provenant", description="Push, pull and govern artifacts on a Provenant server.", parents=[shared]
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, handler: Any, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text, parents=[shared])
        sub.set_defaults(handler=handler)
        return sub

    login = command("login", command_login, "check a token against a server and save them as a profile")
    login.add_argument("login_url", nargs="?", metavar="URL", help="the server, e.g. https://provenant.example.com")
    login.add_argument("--default", dest="make_default", action="store_true", help="make this the default profile")

    command("whoami", command_whoami, "who the server takes you for: user, token in use, roles by project")

    push = command("push", command_push, "upload a file and publish it as the next version of an artifact")
    push.add_argument("path", help="the file")
    push.add_argument("--project", required=True, help="the project's slug")
    push.add_argument("--artifact", required=True, help="the artifact's name (created if the project has none)")
    push.add_argument("--kind", default="model", help="the kind of a new artifact (default: model)")
    push.add_argument(
        "--metadata", action="append", metavar="KEY=VALUE", help="a metadata entry (repeatable; JSON values kept)"
    )
    push.add_argument(
        "--sign-key", metavar="PEM", help="sign the file with this elliptic-curve private key (needs model_signing)"
    )
    push.add_argument(
        "--sign-certificate", metavar="PEM", help="with --sign-key: sign with this certificate of the key instead"
    )
    push.add_argument(
        "--sign-chain", action="append", metavar="PEM", help="with --sign-certificate: its issuers (repeatable)"
    )

    pull = command("pull", command_pull, "download a version (by id, digest or reference), checked by its digest")
    pull.add_argument(
        "ref", help="a version id, or with --project sha256:<hex> or a reference such as fraud-scorer@production"
    )
    pull.add_argument("dest", nargs="?", help="a file or folder to put it in (default: print the cached path)")
    pull.add_argument("--project", help="the project a digest or a reference is read in")

    ls = command("ls", command_ls, "list projects, artifacts, artifact versions or registered models")
    ls.add_argument("what", choices=sorted(LISTS))
    ls.add_argument("--project", help="only this project's (a slug)")

    show = command("show", command_show, "an artifact version with its lineage")
    show.add_argument("version_id", type=int, metavar="VERSION_ID")

    lineage = command("lineage", command_lineage, "what made an artifact version, and what it made, as a tree")
    lineage.add_argument("ref", help="a version id, or with --project a reference such as fraud-scorer@production")
    lineage.add_argument("--project", help="the project a reference is read in")
    lineage.add_argument("--direction", choices=("upstream", "downstream", "both"), default="both")
    lineage.add_argument("--depth", type=int, help="edges to follow (default all)")

    register = command("register", command_register, "register an artifact version as a version of a model")
    register.add_argument(
        "version", nargs="?", help="a version id, or with --project a reference such as fraud-scorer@3"
    )
    register.add_argument("--model", required=True, help="the model's name (registered if the project has none)")
    register.add_argument("--project", help="the project a reference is read in (or an MLflow run's files copied to)")
    register.add_argument("--mlflow-run", metavar="RUN_ID", help="register what this MLflow run logged (see --path)")
    register.add_argument("--path", default="model", help="with --mlflow-run: a logged model, folder or file")
    register.add_argument("--tracking-uri", help="with --mlflow-run: the MLflow server (default MLFLOW_TRACKING_URI)")

    status = command("status", command_status, "promotion requests awaiting your review")
    status.add_argument("--project", help="only this project's (a slug)")

    approve = command("approve", command_approve, "approve a promotion request")
    approve.add_argument("id", type=int, metavar="ID")
    approve.add_argument("--comment", default="", help="why")

    reject = command("reject", command_reject, "reject a promotion request (say why)")
    reject.add_argument("id", type=int, metavar="ID")
    reject.add_argument("--comment", required=True, help="why: the requester reads it")

    promote = command("promote", command_promote, "request the promotion of a model version to a stage")
    promote.add_argument("model_version", type=int, metavar="MODEL_VERSION_ID", help="the model version's id")
    promote.add_argument("--stage", required=True, choices=("staging", "production", "archived"))
    promote.add_argument("--justification", required=True, help="why it should move: reviewers read it")

    run = command(
        "run",
        command_run,
        "run a command as a recorded run: its context captured, its outputs published, its exit status kept",
    )
    run.add_argument("--project", required=True, help="the project's slug")
    run.add_argument("--name", help="the run's name (default: the script the command runs, else its program)")
    run.add_argument(
        "--output", default="outputs", help="files the command writes or changes here are published (default: outputs)"
    )
    run.add_argument("--kind", default="model", help="the kind of artifacts created for new names (default: model)")
    run.add_argument("--allow-dirty", action="store_true", help="record the run even with uncommitted changes")
    run.add_argument(
        "child_command",
        nargs=argparse.REMAINDER,
        metavar="-- COMMAND ...",
        help="what to run (with --json its standard output goes to stderr, leaving stdout to the JSON document)",
    )

    token_parser = command("token", lambda args: EXIT_USAGE, "list, issue and revoke API tokens")
    token_commands = token_parser.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    token_list = token_commands.add_parser(
        "list", parents=[shared], help="your tokens and those of your projects' service accounts"
    )
    token_list.set_defaults(handler=command_token_list)
    token_issue = token_commands.add_parser(
        "issue", parents=[shared], help="issue a token (its secret is printed this once; needs an admin token)"
    )
    token_issue.set_defaults(handler=command_token_issue)
    token_issue.add_argument("--name", required=True, help="what it is for, e.g. nightly-training")
    token_issue.add_argument("--scope", required=True, choices=("read", "write", "review", "admin"))
    token_issue.add_argument("--days", type=int, default=30, help="days until it expires, 1 to 366 (default 30)")
    token_issue.add_argument("--project", help="restrict it to this project (a slug)")
    token_issue.add_argument("--user", help="a service account of a project you maintain (default: you)")
    token_revoke = token_commands.add_parser("revoke", parents=[shared], help="revoke a token at once")
    token_revoke.set_defaults(handler=command_token_revoke)
    token_revoke.add_argument("id", type=int, metavar="ID", help="the token's id (from token list)")

    import_parser = command("import", lambda args: EXIT_USAGE, "copy another system's history into Provenant")
    import_commands = import_parser.add_subparsers(dest="import_command", metavar="SOURCE", required=True)
    from_mlflow = import_commands.add_parser(
        "mlflow",
        parents=[shared],
        help="experiments, runs, metric histories and artifacts of an MLflow tracking server (the 'mlflow' extra)",
    )
    from_mlflow.set_defaults(handler=command_import_mlflow)
    from_mlflow.add_argument(
        "--tracking-uri", required=True, help="the MLflow tracking server, e.g. http://mlflow:5000"
    )
    from_mlflow.add_argument("--project", required=True, help="the project every experiment is imported into")
    from_mlflow.add_argument(
        "--experiment", action="append", metavar="NAME", help="only this experiment (repeatable; default: all active)"
    )
    from_mlflow.add_argument(
        "--registered-models", action="store_true", help="also the registered models, their versions and aliases"
    )

    audit_parser = command("audit", lambda args: EXIT_USAGE, "export the audit log, and verify an export offline")
    audit_commands = audit_parser.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    export = audit_commands.add_parser(
        "export", parents=[shared], help="stream the audit log (or, with filters, the entries you audit) to a file"
    )
    export.set_defaults(handler=command_audit_export)
    export.add_argument("dest", help="the file to write (JSON Lines)")
    for name in AUDIT_FILTERS:
        export.add_argument(f"--{name.replace('_', '-')}", dest=name, help=f"only entries of this {name}")
    export.add_argument("--public-key-file", help="also save the server's public key (PEM) to this file")
    verify = audit_commands.add_parser(
        "verify", parents=[shared], help="check an export offline (needs the client's 'audit' extra)"
    )
    verify.set_defaults(handler=command_audit_verify)
    verify.add_argument("export", help="the export file")
    verify.add_argument("--public-key", action="append", default=[], help="a trusted key file (PEM or base64)")
    verify.add_argument("--tree-head", action="append", default=[], help="a tree head fetched separately (JSON)")

    attestation_parser = command("attestation", lambda args: EXIT_USAGE, "check a provenance attestation offline")
    attestation_commands = attestation_parser.add_subparsers(
        dest="attestation_command", metavar="ACTION", required=True
    )
    check = attestation_commands.add_parser(
        "verify",
        parents=[shared],
        help="check an attestation's signature and subject offline (needs the client's 'audit' extra)",
    )
    check.set_defaults(handler=command_attestation_verify)
    check.add_argument("attestation", help="the envelope (.intoto.jsonl or .json)")
    check.add_argument(
        "--key", action="append", default=[], help="trusted keys: PEM, base64, or /attestations/keys/ JSON"
    )
    check.add_argument("--file", help="the file the attestation should be about")
    return parser


#: The Python API's words for an option in its messages, and the command line's for the same option.
API_TO_OPTION = (("pass project=.", "pass --project."), ("pass allow_dirty=True", "pass --allow-dirty"))


def in_command_line_words(message: str) -> str:
    """A message of the Python API as the command line says it: `--project`, not `project=`."""
    for api, option in API_TO_OPTION:
        message = message.replace(api, option)
    return message


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit status (0, 1 for an error, 2 for a usage error, 130 when interrupted)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help (0) or a usage error (2): returned, so callers in-process can check it
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    for name in ("url", "token", "profile"):
        setattr(args, name, getattr(args, name, None))
    args.json = getattr(args, "json", False)
    if args.command == "login":
        args.url = args.login_url or args.url
    try:
        return args.handler(args)
    except ProvenantError as error:
        print(f"error: {error.detail} ({error.code})", file=sys.stderr)
    except (CommandError, ValueError, OSError, ImportError, DirtyWorkTree, RunStateError) as error:
        # ValueError: no server configured, a bad config file; ImportError: an optional extra not installed.
        print(f"error: {in_command_line_words(str(error))}", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
