"""WSGI application of the ML service (gunicorn, port 8045; scripts/ml_serve.py starts it).

The models are loaded once, here, before the server accepts a request (gunicorn --preload: in the master,
before it forks its workers, which share the loaded models). A missing or corrupt model file stops the
process with exit status 3 and one line naming the file."""

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "drplan.ml_settings")

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

application = get_wsgi_application()

from mlservice import registry  # noqa: E402
from mlservice.artifacts import ModelFileError  # noqa: E402

try:
    registry.load()
except ModelFileError as exc:
    print(f"ML service cannot start: {exc}", file=sys.stderr, flush=True)
    os._exit(3)

get_resolver().url_patterns  # noqa: B018 - import the views now: a broken import stops the start, not a request
