from __future__ import annotations

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
application = get_wsgi_application()
# A page of runs leaves tens of thousands of objects in cycles (model instances, querysets, template
# contexts) that outlive young collections: with the default thresholds (700, 10, 10) a full
# collection ran every ~20 runs-table requests and paused that request for 40-70 ms. Fewer, larger
# young collections keep full collections rare (none in 120 requests).
gc.set_threshold(10_000, 10, 10)

from django.conf import settings  # noqa: E402 (needs the application set up)

if settings.STUDIO_MONITOR:
    from runs import monitor  # noqa: E402

    monitor.start_in_background()

if settings.STUDIO_NOTIFY:
    from runs import notify  # noqa: E402

    notify.start_in_background()

from runs import statistics  # noqa: E402

statistics.start_in_background()  # SQLite only
