"""The shipped nginx config (deploy/nginx/provenant.conf) made runnable on loopback by anyone: its integration test
(tests/integration/test_nginx_accel.py) and the download benchmark (benchmarks/blob_transfer.py) run the very file
a deployment includes, changing only the listen address, granian's address and the blob and static folders.
benchmarks/topology.py runs it in front of several granian processes, one `server` line each.

No pytest and no Django here, so that the benchmark, which runs outside pytest, can import it.
"""

import grp
import os
import pwd
import shutil
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BINARY = shutil.which("nginx") or "/usr/sbin/nginx"
SHIPPED_CONFIG = ROOT / "deploy" / "nginx" / "provenant.conf"
#: The internal location of the shipped config: what PROVENANT_ACCEL_REDIRECT names for it.
ACCEL_PREFIX = "/_provenant_blobs/"


def installed() -> bool:
    return Path(BINARY).exists()


def replace_once(text: str, old: str, new: str) -> str:
    if text.count(old) != 1:
        raise ValueError(f"{SHIPPED_CONFIG} no longer has exactly one `{old}`: update tests/nginx.py with it")
    return text.replace(old, new)


def render_config(
    workdir: Path,
    *,
    port: int,
    upstream_port: int | Sequence[int],
    blobs: Path,
    static: Path | None = None,
    worker_connections: int = 64,
) -> Path:
    """The shipped server block with these addresses and folders, in a main config that keeps every file nginx
    writes in `workdir` and runs in the foreground. Its access log has one line per request: the X-Request-ID and
    the final URI (under ACCEL_PREFIX when nginx sent the file itself).

    Several `upstream_port`s: one upstream `server` line each, as a deployment with several web hosts writes them.
    `static` is STATIC_ROOT, by default beside the blob folder as in PROVENANT_VAR_DIR."""
    ports = [upstream_port] if isinstance(upstream_port, int) else list(upstream_port)
    static = static if static is not None else blobs.parent / "static"
    server = SHIPPED_CONFIG.read_text()
    server = replace_once(server, "listen 80;", f"listen 127.0.0.1:{port};")
    servers = "\n    ".join(f"server 127.0.0.1:{each};" for each in ports)
    server = replace_once(server, "server 127.0.0.1:8000;", servers)
    server = replace_once(server, "alias /srv/provenant/var/blobs/;", f"alias {blobs}/;")
    server = replace_once(server, "alias /srv/provenant/var/static/;", f"alias {static}/;")
    # Started as root (CI), nginx runs its workers as `nobody`, who may not enter pytest's folders; as this user
    # they read the blobs as the app wrote them. For anyone else nginx keeps its own user, and this line is not needed.
    if os.geteuid() == 0:
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};"
    else:
        user = ""
    temp_paths = "".join(
        f"    {kind}_temp_path {workdir / kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    config = workdir / "nginx.conf"
    config.write_text(
        f"daemon off;\nworker_processes 1;\n{user}\npid {workdir / 'nginx.pid'};\n"
        f"error_log {workdir / 'error.log'} notice;\nevents {{ worker_connections {worker_connections}; }}\n"
        "http {\n"
        "    log_format final_uri '$http_x_request_id $uri';\n"
        f"    access_log {workdir / 'access.log'} final_uri;\n"
        f"{temp_paths}{server}\n"
        "}\n"
    )
    return config


def command(workdir: Path, config: Path) -> list[str]:
    """nginx in the foreground on `config`, with `workdir` as its prefix and error log folder."""
    return [BINARY, "-p", str(workdir), "-c", str(config), "-e", str(workdir / "error.log")]
