"""The PostgreSQL databases a benchmark makes for itself: created, marked with a comment naming the benchmark and
what they hold, reused when complete, and dropped only if they carry that mark."""

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit


class BenchError(Exception):
    """A benchmark that cannot run as asked: the message says why."""


class BenchDatabases:
    """A benchmark's own databases on the server of `url`, named after the URL's database (or `default_base`)."""

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
    def admin(self) -> Iterator:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            yield connection

    def comment(self, name: str) -> str | None:
        """The database's comment, or None when there is no such database."""
        with self.admin() as connection:
            row = connection.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [name]
            ).fetchone()
        return None if row is None else row[0] or ""

    def set_comment(self, name: str, text: str) -> None:
        from psycopg import sql

        with self.admin() as connection:
            connection.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(text)))

    def create(self, name: str) -> None:
        from psycopg import sql

        with self.admin() as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.set_comment(name, f"{self.marker}: loading")
        self.created.append(name)

    def drop(self, name: str) -> None:
        from psycopg import sql

        if not (self.comment(name) or "").startswith(self.marker):
            raise BenchError(f"database {name} was not made by this benchmark; not dropping it")
        with self.admin() as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

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
