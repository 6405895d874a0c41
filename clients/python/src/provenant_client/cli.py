"""`provenant`: the client on the command line, for people at a terminal and for shell scripts.

Every command prints for a person by default and, with `--json`, one JSON document a script can parse. A refusal
by the server prints `error: <detail> (<code>)` on stderr and exits 1, never a traceback: a 404 or a missing role
is an answer, not a crash. Usage errors exit 2 (argparse's convention); Ctrl-C exits 130 (the shell's).

The server, token and profile come from `--url`, `--token`, `--profile`, else the environment or the default
profile that `provenant login` saved (see `config`).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from provenant_client import config
from provenant_client.client import Client
from provenant_client.errors import ProvenantError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a command stopped by Ctrl-C
#: Items asked for per page of a list: the server's maximum, so a long list takes few requests.
PAGE_SIZE = 500
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


def all_pages(client: Client, path: str, **params: Any) -> Iterator[dict[str, Any]]:
    """Every item of a cursor-paginated list, following `next` (an absolute URL that carries the filters)."""
    page = client.get(path, **{name: value for name, value in params.items() if value is not None})
    while True:
        yield from page["results"]
        if not page.get("next"):
            return
        page = client.request("GET", page["next"]).json()


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
    # The API has no endpoint naming the token's user; what it can say is whether the token is accepted and what
    # it reaches, which is what a person checking a profile wants to know.
    with connect(args) as client:
        projects = [project["slug"] for project in all_pages(client, "/projects/", page_size=PAGE_SIZE)]
        document = {
            "url": client.server,
            "profile": client.profile,
            "authenticated": "Authorization" in client.http.headers,
            "projects": projects,
        }
    if not document["authenticated"]:
        text = f"{client.server}: anonymous (no token; run `provenant login`)"
    else:
        text = (
            f"{client.server}, profile {client.profile or '(none: from the environment or --token)'}\n"
            f"token accepted; projects visible: {', '.join(projects) or '(none)'}"
        )
    emit(args, document, text)
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
    if not os.path.isfile(args.path):
        raise CommandError(f"{args.path}: no such file")
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
            )
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
        },
        f"{version['project']}/{version['artifact_name']} v{version['number']} (version {version['id']})\n"
        f"{pushed.digest}, {human_size(pushed.size)}; {sent}",
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
    params: dict[str, Any] = {"page_size": PAGE_SIZE}
    if args.what != "projects":
        params["project"] = args.project
    elif args.project:
        raise CommandError("ls projects takes no --project")
    with connect(args) as client:
        rows = list(all_pages(client, path, **params))
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
        lineage = client.get(f"/lineage/artifact-version/{args.version_id}/")
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


def command_status(args: argparse.Namespace) -> int:
    with connect(args) as client:
        waiting = list(all_pages(client, "/promotions/awaiting-me/", page_size=PAGE_SIZE))
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
        request = client.post(f"/promotions/{args.id}/{decision}/", {"comment": args.comment or ""})
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
        request = client.post(
            "/promotions/",
            {"model_version": args.model_version, "target_stage": args.stage, "justification": args.justification},
        )
    emit(
        args,
        request,
        f"promotion {request['id']} requested: {request['model_name']} v{request['version']} to "
        f"{request['target_stage']}, {request['state']}; {request['approvals_required']} approval(s) required",
    )
    return 0


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

    command("whoami", command_whoami, "the server and profile in use, and whether the token is accepted")

    push = command("push", command_push, "upload a file and publish it as the next version of an artifact")
    push.add_argument("path", help="the file")
    push.add_argument("--project", required=True, help="the project's slug")
    push.add_argument("--artifact", required=True, help="the artifact's name (created if the project has none)")
    push.add_argument("--kind", default="model", help="the kind of a new artifact (default: model)")
    push.add_argument(
        "--metadata", action="append", metavar="KEY=VALUE", help="a metadata entry (repeatable; JSON values kept)"
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

    command("status", command_status, "promotion requests awaiting your review")

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
    return parser


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
    except (CommandError, ValueError, OSError) as error:  # ValueError: no server configured, a bad config file
        print(f"error: {error}", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
