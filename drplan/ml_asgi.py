"""ASGI application of the ML service (daphne, port 8045; scripts/ml_serve.py starts it).

The models are loaded once, here, before the server accepts a request. A missing or corrupt model file stops
the process with exit status 3 and one line naming the file."""

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "drplan.ml_settings")

import django

django.setup()

from django.core.asgi import get_asgi_application  # noqa: E402
from django.urls import get_resolver  # noqa: E402

from mlservice import registry  # noqa: E402
from mlservice.artifacts import ModelFileError  # noqa: E402

try:
    registry.load()
except ModelFileError as exc:
    print(f"ML service cannot start: {exc}", file=sys.stderr, flush=True)
    os._exit(3)

application = get_asgi_application()
get_resolver().url_patterns  # noqa: B018 - import the views now: a broken import stops the start, not a request
