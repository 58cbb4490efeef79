"""One settings module for every environment, read from the environment.

With no variables set it runs the embedded default: SQLite and Celery's filesystem broker under var/.
A deployment sets DATABASE_URL, CELERY_BROKER_URL, KETER_SECRET_KEY, KETER_DEBUG=0 and KETER_ALLOWED_HOSTS.
"""

import datetime
import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("KETER_VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


DEBUG = env_bool("KETER_DEBUG", True)
# The fallback key only ever serves the embedded demo; check --deploy flags it if a deployment forgets.
SECRET_KEY = env_str("KETER_SECRET_KEY", "django-insecure-embedded-demo-key-change-me-in-production")
ALLOWED_HOSTS = env_list("KETER_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("KETER_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "axes",
    "keter.accounts",
    "ledger",
    "planner",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "keter.middleware.ContentSecurityPolicyMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "keter.urls"
WSGI_APPLICATION = "keter.wsgi.application"

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
                "keter.accounts.context_processors.team_context",
                "planner.context_processors.notifications",
            ],
            "builtins": ["django.contrib.humanize.templatetags.humanize"],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'keter.sqlite3'}"),
        conn_max_age=env_int("KETER_DB_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # The embedded mode runs a web server and a worker on one file: wait for the lock instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django turns psycopg's prepared statements off unless told; the ORM's queries (client-side binding)
    # are never prepared either way. The ledger's hot calls ask for it (ledger/services/_pg.py): without
    # this, the server would parse and plan each of them on every call. (Behind PgBouncer in transaction
    # mode, which cannot keep prepared statements, set it back to None.)
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Sign-in throttling: 5 wrong passwords for one email from one address lock it for 15 minutes.
AXES_FAILURE_LIMIT = env_int("KETER_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = datetime.timedelta(minutes=env_int("KETER_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_USERNAME_FORM_FIELD = "username"
AXES_USERNAME_CALLABLE = "keter.accounts.throttling.axes_username"
AXES_VERBOSE = False
if env_bool("KETER_BEHIND_PROXY", False):
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("KETER_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns on every request when the folder is missing
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

EMAIL_BACKEND = env_str("KETER_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("KETER_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("KETER_EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("KETER_EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("KETER_EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("KETER_EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("KETER_DEFAULT_FROM_EMAIL", "Keter Labs <credits@keter.local>")

# Production hardening: on whenever debug is off, so check --deploy stays clean.
SECURE_SSL_REDIRECT = env_bool("KETER_SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = 0 if DEBUG else env_int("KETER_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if env_bool("KETER_BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Celery: Redis in a deployment; the filesystem broker in the embedded mode, so nothing needs installing.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "celery"
    for _sub in ("out", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "data_folder_processed": str(_broker_dir / "processed"),
        # Without this, kombu writes its exchange files to ./control in whatever folder it runs from.
        "control_folder": str(_broker_dir / "control"),
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # A broker that does not answer must not hang a web request: the jobs stay queued and the sweeper
    # sends them once it is back.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes the worker's database connections around every task unless told to keep
# them for this many tasks; a busy worker on PostgreSQL saves a connection per task (0: Celery's default).
CELERY_DB_REUSE_MAX = env_int("KETER_CELERY_DB_REUSE_MAX", 0) or None
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE: dict = {
    # Every task is idempotent, so a short interval only shortens the delay after a due moment.
    "ledger-grant-plan-credits": {"task": "ledger.tasks.grant_plan_credits", "schedule": 15 * 60.0},
    "ledger-expire-lots": {"task": "ledger.tasks.expire_lots", "schedule": 5 * 60.0},
    "ledger-expire-holds": {"task": "ledger.tasks.expire_holds", "schedule": 60.0},
    "planner-queue-sweep": {"task": "planner.tasks.sweep_queue", "schedule": 30.0},
}

# The generation queue is simulated: a render takes the model's render seconds per output second × the
# clip's length × this factor (0.05: a 10 s clip of a 10 s/s model renders in 5 s; tests use ~0).
KETER_SIM_SPEED = env_float("KETER_SIM_SPEED", 0.05)
# A running job is presumed lost when its worker has not settled it this long after its render was due.
KETER_QUEUE_LEASE_SECONDS = env_float("KETER_QUEUE_LEASE_SECONDS", 120.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("KETER_LOG_LEVEL", "INFO")},
}
