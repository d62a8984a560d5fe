from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
application = get_wsgi_application()

from django.conf import settings  # noqa: E402 (needs the application set up)

if settings.STUDIO_MONITOR:
    from runs import monitor  # noqa: E402

    monitor.start_in_background()
