"""WSGI entry point (``gunicorn thinkmeter.wsgi``; ``manage.py serve`` uses waitress)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thinkmeter.settings")
application = get_wsgi_application()
