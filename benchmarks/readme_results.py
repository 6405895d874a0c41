"""The part of benchmarks/README.md a script writes: its results between two markers, the rest left alone."""

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
