"""A module-level Celery app for Celery's own command line (`celery -A twinplatform.worker.celery_app beat`).

NOTE: this is the one place an app is built at import time, because `celery -A` needs an importable app.
The platform's own commands never import it; `platform worker` builds its app from settings explicitly.
"""

from __future__ import annotations

from twinplatform.config import get_settings
from twinplatform.worker.app import create_app

app = create_app(get_settings())
