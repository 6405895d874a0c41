"""The part of benchmarks/README.md a script writes: its results between two markers, the rest left alone; and
the facts about the code and the machine that every results block states."""

import subprocess
from contextlib import suppress
from datetime import datetime
from pathlib import Path


def replace_results(readme: Path, start: str, end: str, results: str) -> None:
    """Put `results` between the `start` and `end` markers (appended with them when they are not there yet)."""
    text = readme.read_text() if readme.exists() else "# Benchmarks\n"
    block = f"{start}\n{results}{end}"
    if start in text and end in text:
        head, _, rest = text.partition(start)
        _, _, tail = rest.partition(end)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    readme.write_text(text)


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


def command_output(*argv: str) -> str:
    """What a command prints, or "" if it cannot run: a results block says "?" rather than failing a long run."""
    with suppress(OSError, subprocess.SubprocessError):
        return subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False).stdout  # noqa: S603
    return ""


def code_version(repo: Path) -> str:
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
