"""Point this process's Celery app at another broker for a while: a Redis of a test's own, or one that is down."""

from collections.abc import Iterator
from contextlib import contextmanager

from kombu import pools

from config.celery import app as celery_app


@contextmanager
def celery_app_on(url: str) -> Iterator[None]:
    """Point this process's Celery app (the on-commit hand-offs, pings) at another broker, and back."""
    conf = celery_app.conf
    saved = conf.broker_url, conf.broker_read_url, conf.broker_write_url

    def drop_connections() -> None:
        if celery_app._pool is not None:
            celery_app._pool.force_close_all()
            celery_app._pool = None
        celery_app.amqp._producer_pool = None
        # kombu keeps producer pools in a registry by connection: a closed one would be handed out again.
        pools.reset()

    drop_connections()
    conf.broker_url = conf.broker_read_url = conf.broker_write_url = url
    try:
        yield
    finally:
        drop_connections()
        conf.broker_url, conf.broker_read_url, conf.broker_write_url = saved
