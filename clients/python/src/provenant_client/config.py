"""Where the client finds its server, its token and its local folders.

Settings come, field by field, from the arguments given to `Client`, else the environment (`PROVENANT_URL`,
`PROVENANT_TOKEN`, `PROVENANT_PROFILE`), else a named profile in the config file that `provenant login` writes
(`$XDG_CONFIG_HOME/provenant/config.json`, by default `~/.config/provenant/config.json`). A profile's token is only
ever sent to that profile's own server: pointing `PROVENANT_URL` elsewhere does not carry it along.

The config file holds tokens, so it is written with mode 0600 in a folder of mode 0700, replaced atomically so a
crash never leaves half a file, and JSON rather than TOML so that Python 3.9 and 3.10 read it without a dependency.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_PROFILE = "default"


def config_path() -> Path:
    """The config file: `$PROVENANT_CONFIG` if set, else under `$XDG_CONFIG_HOME` (default `~/.config`)."""
    explicit = os.environ.get("PROVENANT_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "provenant" / "config.json"


def cache_dir() -> Path:
    """The local cache (blobs by digest, upload sessions to resume): `$PROVENANT_CACHE_DIR`, else
    `$XDG_CACHE_HOME/provenant` (default `~/.cache/provenant`)."""
    explicit = os.environ.get("PROVENANT_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "provenant"


def read_config(path: Path | None = None) -> dict[str, Any]:
    """The config file's content, `{"default": name, "profiles": {name: {"url", "token"}}}`; empty if absent."""
    path = path or config_path()
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return {"profiles": {}}
    if not isinstance(document, dict) or not isinstance(document.get("profiles", {}), dict):
        raise ValueError(f"{path} is not a Provenant config file (expected an object with 'profiles').")
    document.setdefault("profiles", {})
    return document


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only, atomically: a temporary file of mode 0600 beside it,
    then renamed over it, so neither a crash nor another user ever sees a partial or readable copy."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save_profile(
    name: str = DEFAULT_PROFILE, *, url: str, token: str, make_default: bool = False, path: Path | None = None
) -> Path:
    """Add or replace the profile `name` (what `provenant login` does); the first profile saved becomes the
    default, or this one when `make_default`. Returns the config file's path."""
    path = path or config_path()
    document = read_config(path)
    document["profiles"][name] = {"url": url.rstrip("/"), "token": token}
    if make_default or not document.get("default"):
        document["default"] = name
    write_private(path, json.dumps(document, indent=2, sort_keys=True) + "\n")
    return path


def check_server_url(url: str, source: str) -> None:
    """Refuse, naming the setting it came from, a server URL that is not http(s)://host[:port][/path]: httpx would
    fail on it only once a request is sent, as a connection error that retries would only prolong."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        parts = parts._replace(netloc="")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"The server URL {url!r} (from {source}) is not an http:// or https:// address with a host, "
            "like https://provenant.example.com or http://localhost:8000."
        )


@dataclass(frozen=True)
class Settings:
    """The resolved server URL (without a trailing slash or the API prefix) and token, if any."""

    url: str
    token: str | None
    profile: str | None


def resolve_settings(url: str | None = None, token: str | None = None, profile: str | None = None) -> Settings:
    """Arguments, else environment, else the profile (named, else `$PROVENANT_PROFILE`, else the file's default).

    Raises ValueError when no URL can be found, when it is not an http(s) URL with a host, or when a profile is
    named that the config file does not hold.
    """
    named = profile or os.environ.get("PROVENANT_PROFILE")
    document = read_config()
    chosen = named or document.get("default")
    values = document["profiles"].get(chosen, {}) if chosen else {}
    if named and not values:
        raise ValueError(f"No profile {named!r} in {config_path()}; save one with `provenant login`.")
    profile_url = (values.get("url") or "").rstrip("/") or None
    resolved_url = (url or os.environ.get("PROVENANT_URL") or profile_url or "").rstrip("/")
    if not resolved_url:
        raise ValueError("No server: pass url=, set PROVENANT_URL, or save a profile with `provenant login`.")
    source = "url=" if url else "PROVENANT_URL" if os.environ.get("PROVENANT_URL") else f"profile {chosen!r}"
    check_server_url(resolved_url, source)
    resolved_token = token or os.environ.get("PROVENANT_TOKEN")
    if resolved_token is None and profile_url == resolved_url:
        resolved_token = values.get("token")
    return Settings(url=resolved_url, token=resolved_token, profile=chosen if values else None)
