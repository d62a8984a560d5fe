"""Run Studio settings: one module, driven by environment variables.

With nothing set, the studio runs on the embedded default: SQLite and files under ./var/.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: str) -> bool:
    value = os.environ.get(name, default)
    if value not in ("True", "False"):
        raise ValueError(f"{name} must be True or False, not {value!r}")
    return value == "True"


def envint(name: str, default: str) -> int:
    return int(os.environ.get(name, default))


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# Everything the embedded default writes (database, uploaded files, the generated secret key).
DATA_DIR = Path(os.environ.get("STUDIO_DATA_DIR", BASE_DIR / "var"))
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once and kept in DATA_DIR."""
    if key := os.environ.get("SECRET_KEY"):
        return key
    path = DATA_DIR / "secret_key"
    if not path.exists():
        # Written whole into a 0600 temporary file (mkstemp's mode), then linked in place: never readable
        # by others, never seen half-written, and of two processes starting at once both read the one
        # that was linked first.
        handle, temporary = tempfile.mkstemp(dir=DATA_DIR, prefix=".secret_key-")
        with os.fdopen(handle, "w") as out:
            out.write(secrets.token_urlsafe(50))
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
        os.unlink(temporary)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = envbool("DEBUG", "False")
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")
# The studio's public address, used in links the server writes (config files, emails).
STUDIO_BASE_URL = os.environ.get("STUDIO_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "runs",
    "studio",
    "axes",  # login throttling: see AXES_* below
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "studio.middleware.VaryOnHtmx",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "runs.api.middleware.ApiRequestGuard",  # before an API view reads: body limits (413), NUL in names (400)
    "axes.middleware.AxesMiddleware",  # turns a refused login into the lockout page
]

ROOT_URLCONF = "studio.urls"
WSGI_APPLICATION = "studio.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# SQLite gets the same options however it is named: the embedded default, or DATABASE_URL=sqlite:///...
# (an operator putting the database on another disk). Without them 12 concurrent writers saw
# "database is locked" on about 4 requests in 10.
SQLITE_OPTIONS = {
    # WAL lets readers run beside the writer. mmap: pages are read from the OS's page cache, shared by
    # every connection and process, instead of copied into each connection's own small cache.
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA mmap_size=1073741824;",
    # IMMEDIATE takes the write lock at BEGIN, so two writers queue on the busy timeout instead of
    # failing with "database is locked" when a read transaction tries to upgrade.
    "transaction_mode": "IMMEDIATE",
    "timeout": 30,  # seconds a writer waits for the lock
}


def _database(url: str | None) -> dict[str, Any]:
    # The default is a file path, not a URL: a '#', '?' or '%' in STUDIO_DATA_DIR would cut or change it.
    if url:
        database = dj_database_url.parse(url, conn_max_age=60)
    else:
        database = {"ENGINE": "django.db.backends.sqlite3", "NAME": DATA_DIR / "db.sqlite3"}
    if database["ENGINE"] == "django.db.backends.sqlite3":
        database["OPTIONS"] = {**SQLITE_OPTIONS, **database.get("OPTIONS", {})}
        # Kept open between requests: a new connection starts with an empty page cache and must read
        # the schema and the planner's statistics again (at 100,000 runs that was about a third of a
        # filtered page's time). Each server thread keeps its own.
        database["CONN_MAX_AGE"] = 600
        # A file (not :memory:) so the live server's threads each get their own connection, as a real
        # deployment's workers do; one per test process, so concurrent runs never collide.
        database["TEST"] = {"NAME": Path(tempfile.gettempdir()) / f"studio-test-{os.getpid()}.sqlite3"}
    else:
        # One test database per test process, so two runs of the suite on one machine never collide.
        database["TEST"] = {"NAME": f"test_{database['NAME']}_{os.getpid()}"}
    return database


DATABASES = {"default": _database(os.environ.get("DATABASE_URL"))}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"  # filled by collectstatic; whitenoise serves it
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(os.environ.get("STUDIO_MEDIA_ROOT", DATA_DIR / "files"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# Login throttling (django-axes): LOGIN_FAILURE_LIMIT failed logins from one client address, or for one
# account, refuse further logins from it or to it for LOGIN_COOLOFF_MINUTES, even with the right password
# (studio/login_throttle.py explains it on the login page). Failed logins before that are answered after
# LOGIN_FAILURE_DELAY seconds. API tokens never go through this. The address is REMOTE_ADDR; behind a
# reverse proxy every client would share the proxy's, so there set AXES_IPWARE_META_PRECEDENCE_ORDER and
# AXES_IPWARE_PROXY_COUNT as README's "Behind a reverse proxy" says (django-ipware reads them).
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", "5")
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("LOGIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]  # either one: a client trying many accounts, or one account
# A try during the lockout does not restart it, so the time the page gives is the time it ends.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "studio.login_throttle.lockout_response"
AXES_IPWARE_META_PRECEDENCE_ORDER = envlist("AXES_IPWARE_META_PRECEDENCE_ORDER", "REMOTE_ADDR")
# How many proxy addresses the header carries after the client's (0: one proxy that writes only the client's).
AXES_IPWARE_PROXY_COUNT = envint("AXES_IPWARE_PROXY_COUNT", "0") if os.environ.get("AXES_IPWARE_PROXY_COUNT") else None
LOGIN_FAILURE_DELAY = float(os.environ.get("LOGIN_FAILURE_DELAY", "1"))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "runs.api.auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["runs.api.parsers.JSONParser"],  # DRF's, refusing hostile nesting
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "runs.api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [],
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Run Studio API",
    "DESCRIPTION": "Run history for machine-learning experiments.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",  # vendored by drf-spectacular-sidecar: no CDN
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"RunStatusEnum": "runs.models.Run.Status"},
    # The errors every operation may answer (401, 404, 400, 413) are added in one place.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "runs.api.schema.add_common_errors"],
}

# Runs list pages: the default and the largest page an API client may ask for.
RUNS_PAGE_SIZE = envint("RUNS_PAGE_SIZE", "100")
RUNS_MAX_PAGE_SIZE = 1000

# Heartbeats (runs/monitor.py): silent this long, a run is NotResponding; silent this much longer,
# it has lost contact and ends Failed. Every server process sweeps every RUNS_MONITOR_INTERVAL s.
RUNS_HEARTBEAT_TIMEOUT = envint("RUNS_HEARTBEAT_TIMEOUT", "60")
RUNS_LOST_CONTACT_AFTER = envint("RUNS_LOST_CONTACT_AFTER", "600")
RUNS_MONITOR_INTERVAL = envint("RUNS_MONITOR_INTERVAL", "5")
STUDIO_MONITOR = envbool("STUDIO_MONITOR", "True")

# Script runs: the largest snapshot (zipped source folder) a run may carry.
SNAPSHOT_MAX_BYTES = envint("SNAPSHOT_MAX_MB", "300") * 2**20
# The largest API request bodies (runs/api/middleware.py): JSON, and a run's files and images.
API_JSON_MAX_BYTES = envint("API_JSON_MAX_MB", "8") * 2**20
RUN_FILE_MAX_BYTES = envint("RUN_FILE_MAX_MB", "5120") * 2**20

# Compute targets: runs for them are sent to this broker (Redis), where `studio worker`s take them.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")

# Notifications (runs/notify.py). Mail goes out by SMTP when EMAIL_HOST is set; otherwise it is
# printed on the server's console, so `make run` shows it in its terminal.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = envint("EMAIL_PORT", "25")
    EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", "False")
    EMAIL_USE_SSL = envbool("EMAIL_USE_SSL", "False")
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", "10")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "run-studio@localhost")
NOTIFY_INTERVAL = float(os.environ.get("NOTIFY_INTERVAL", "2"))  # how often each server process looks
NOTIFY_RETRY_BASE = float(os.environ.get("NOTIFY_RETRY_BASE", "5"))  # first retry after; doubles each time
NOTIFY_RETRY_MAX = float(os.environ.get("NOTIFY_RETRY_MAX", "600"))
NOTIFY_GIVE_UP_AFTER = envint("NOTIFY_GIVE_UP_AFTER", str(3 * 24 * 3600))
NOTIFY_LEASE = 120  # seconds a sender holds a delivery it is sending: more than SMTP's and HTTP's timeouts
NOTIFY_WEBHOOK_TIMEOUT = 10
# Webhooks never go to loopback, private, link-local (cloud metadata) or other non-public addresses
# (runs/webhooks.py) except to the hosts named here: host names as the URLs write them, addresses or
# networks (10.1.2.0/24). Comma-separated.
NOTIFY_WEBHOOK_ALLOWED_HOSTS = envlist("NOTIFY_WEBHOOK_ALLOWED_HOSTS", "")
# With a broker, `manage.py notifyworker` processes send (a Celery queue); set NOTIFY_VIA_CELERY=False to
# keep sending inside the server processes even so.
NOTIFY_VIA_CELERY = envbool("NOTIFY_VIA_CELERY", "True")
NOTIFY_QUEUE = os.environ.get("NOTIFY_QUEUE", "studio.notifications")
STUDIO_NOTIFY = envbool("STUDIO_NOTIFY", "True")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}
