"""The part of benchmarks/README.md a script writes: its results between two markers, the rest left alone."""

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
