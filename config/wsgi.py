"""WSGI entry point for gunicorn: `gunicorn config.wsgi`."""

import os

from django.core.wsgi import get_wsgi_application

from core.memory import return_large_blocks_to_the_system

# Large uploads' blocks go back to the system when freed, so a worker's memory stays flat across uploads.
return_large_blocks_to_the_system()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()
