"""Settings, all read from environment variables (or a ``.env`` file beside manage.py).

With nothing set, the service runs as a demo: DEBUG on, a SQLite file, Celery tasks inline.
Production sets at least ``DEBUG=false``, ``SECRET_KEY``, ``ALLOWED_HOSTS`` and ``DATABASE_URL``;
then ``manage.py check --deploy`` is clean. docs/operations.md lists every variable.
"""

from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env")

# --- Core -------------------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    # Only for the demo; never used with DEBUG off.
    SECRET_KEY = "django-insecure-demo-key-for-local-use-only"  # noqa: S105
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # The admin, its index grouped by what operators do (config/admin_site.py).
    "config.apps.LoyaltyAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "import_export",
    "core",
    "accounts",
    "loyalty",
    "rewards",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Bodies too large, NUL characters in the path or query: refused before any view (/api/).
    "core.api.middleware.ApiRequestGuard",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language of each request: the admin's choice (a cookie), else Accept-Language, else
    # LOYALTY_LANGUAGE.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Audit: records which operator made each change to the program (django-simple-history).
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # A host's own templates first (LOYALTY_TEMPLATE_DIRS, comma-separated folders): a
        # file there with the same path replaces ours (docs/member-center.md).
        "DIRS": [
            *(Path(folder) for folder in env.list("LOYALTY_TEMPLATE_DIRS", default=[])),
            BASE_DIR / "templates",
        ],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "loyalty.center.nav.member_nav",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
# DATABASE_URL, e.g. postgres://postgres@127.0.0.1:5432/loyalty; a SQLite file by default.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
# Persistent connections save a connect per request; health checks drop broken ones (a round
# trip at the start of each request that reuses one; off, a request on a dropped connection
# fails once, storing nothing, and the connection is replaced after it).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Values bound by the server, and statements it has seen a few times on a connection kept
    # prepared (parsed and planned once): a quarter less database CPU per event. Behind a
    # pooler that cannot keep prepared statements, set DATABASE_PREPARE_THRESHOLD=off.
    _threshold = env.str("DATABASE_PREPARE_THRESHOLD", default="5")
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True,
        prepare_threshold=None if _threshold == "off" else int(_threshold),
    )
    # A database that stops answering must not hold a request (and its worker) for minutes:
    # connecting gives up after DATABASE_CONNECT_TIMEOUT seconds; a connection whose peer went
    # silent is dropped by TCP keepalives and tcp_user_timeout within about as long; with
    # DATABASE_STATEMENT_TIMEOUT (ms; the web server sets 30,000 unless told otherwise, jobs
    # and commands run unbounded) the server cancels a statement, a lock wait included. The API
    # then answers 503 service_unavailable with Retry-After (docs/operations.md).
    _connect_timeout = env.int("DATABASE_CONNECT_TIMEOUT", default=5)
    DATABASES["default"]["OPTIONS"].update(
        connect_timeout=_connect_timeout,
        keepalives=1,
        keepalives_idle=_connect_timeout,
        keepalives_interval=1,
        keepalives_count=3,
        tcp_user_timeout=_connect_timeout * 1000,
    )
    if _statement_timeout := env.int("DATABASE_STATEMENT_TIMEOUT", default=0):
        DATABASES["default"]["OPTIONS"]["options"] = f"-c statement_timeout={_statement_timeout}"
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default serves concurrent requests: writers take the database's lock when
    # their transaction begins (IMMEDIATE) and wait for it up to 30 s instead of failing with
    # "database is locked"; WAL lets readers go on beside the one writer.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        timeout=30,
        transaction_mode="IMMEDIATE",
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# SQLite (the demo) cannot enforce "one idempotency key per client" for client-less events;
# PostgreSQL does, and an index keeps the lookups fast on both.
SILENCED_SYSTEM_CHECKS = ["models.W047"]

# --- Time -------------------------------------------------------------------------------------
# The program's time zone: days, weeks and months (caps, streaks, leaderboards) count in it.
# Timestamps are stored in UTC regardless.
TIME_ZONE = env.str("LOYALTY_TIME_ZONE", default="UTC")
USE_TZ = True
# Languages: every string a person reads has an English and a Chinese (Simplified) text. The
# program's default language (LOYALTY_LANGUAGE) serves whoever asks for none; the admin's
# switcher and a browser's Accept-Language choose per person. Error codes never change.
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LANGUAGE_CODE = env.str("LOYALTY_LANGUAGE", default="en")
USE_I18N = True
# The project's own texts (the templates'); each app keeps its catalog in <app>/locale.
LOCALE_PATHS = [BASE_DIR / "locale"]

# --- Static files -----------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))

# --- Security (only with DEBUG off; check --deploy is clean with these) -----------------------
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    if env.bool("BEHIND_TLS_PROXY", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- REST framework and the OpenAPI schema ----------------------------------------------------
# Limits on what a request may carry (docs/api.md, "Limits"): the body as a whole, and each
# free-form JSON object in it (event and member attributes, redemption details), encoded.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("LOYALTY_MAX_BODY_BYTES", default=4 * 1024 * 1024)
LOYALTY_MAX_JSON_FIELD_BYTES = env.int("LOYALTY_MAX_JSON_FIELD_BYTES", default=16 * 1024)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "accounts.authentication.MemberTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.HasRequiredScopes"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.NewestFirstCursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "core.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": ["accounts.throttling.ClientRateThrottle"],
}
# Rate limits a minute (0: none): per API key unless its own is set in the admin (a batch
# counts its events), and per member token.
LOYALTY_RATE_LIMIT_PER_MINUTE = env.int("LOYALTY_RATE_LIMIT_PER_MINUTE", default=60_000)
LOYALTY_MEMBER_RATE_LIMIT_PER_MINUTE = env.int("LOYALTY_MEMBER_RATE_LIMIT_PER_MINUTE", default=120)
# The shared cache rate limits count in: CACHE_URL, e.g. redis://127.0.0.1:6379/3 for a
# deployment of several processes; this process's memory by default.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}
SPECTACULAR_SETTINGS = {
    "TITLE": "Loyalty engine API",
    "DESCRIPTION": "Growth value, points, tiers, badges, quests, leaderboards and rewards.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The docs page works offline: Swagger UI is served from the sidecar package.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Choice sets that share a field name get names of their own.
    "ENUM_NAME_OVERRIDES": {"ReferralStateEnum": "rewards.referrals.models.Referral.State"},
    # Every operation's error answers, in the one error shape (accounts/api/schema.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "accounts.api.schema.document_errors",
    ],
}

# --- Celery -----------------------------------------------------------------------------------
# Unset broker: tasks run inline in the calling process. Set: workers run them, beat schedules.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=None)
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_TIME_LIMIT = 15 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 14 * 60
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Periodic jobs, run by `celery -A config beat`; times are in the program's time zone.
CELERY_BEAT_SCHEDULE: dict = {
    "review-tiers": {"task": "loyalty.review_tiers", "schedule": crontab(hour=3, minute=0)},
    "expire-points": {"task": "loyalty.expire_points", "schedule": crontab(hour=0, minute=5)},
    "daily-activity": {"task": "loyalty.daily_activity", "schedule": crontab(hour=1, minute=0)},
    "detect-churn-risk": {
        "task": "loyalty.detect_churn_risk",
        "schedule": crontab(hour=1, minute=30),
    },
    "dispatch-webhooks": {"task": "loyalty.dispatch_webhooks", "schedule": 60.0},
    # Redis leaderboard sets that missed a write (Redis down or slow) refill from the database.
    "heal-leaderboards": {"task": "loyalty.heal_leaderboards", "schedule": 60.0},
    "refresh-leaderboards": {
        "task": "loyalty.refresh_leaderboards",
        "schedule": crontab(hour=4, minute=30),
    },
    # The console's daily aggregates (docs/operators.md): yesterday's events and anything late.
    "refresh-insight": {"task": "loyalty.refresh_insight", "schedule": crontab(hour=2, minute=0)},
    # Campaigns whose scheduled slot has come (docs/campaigns.md).
    "run-campaigns": {"task": "loyalty.run_campaigns", "schedule": 300.0},
    # Program drafts scheduled to publish (docs/simulation.md).
    "publish-drafts": {"task": "loyalty.publish_due_drafts", "schedule": 60.0},
    # The member center's used links, once they have expired (docs/member-center.md).
    "forget-member-links": {"task": "loyalty.forget_member_links", "schedule": 3600.0},
    # Referrals past their window expire; credits a dead worker left are posted (docs/referrals.md).
    "referrals-sweep": {"task": "rewards.referrals_sweep", "schedule": 3600.0},
    "activate-pending-points": {
        "task": "loyalty.activate_pending_points",
        "schedule": crontab(minute=10),
    },
}

# --- The loyalty program ----------------------------------------------------------------------
# Worker processes a what-if simulation replays history with (0: one per core).
LOYALTY_SIMULATION_WORKERS = env.int("LOYALTY_SIMULATION_WORKERS", default=0)
# How long a member token minted by the host app stays valid, in seconds (default 15 minutes).
LOYALTY_MEMBER_TOKEN_TTL = env.int("LOYALTY_MEMBER_TOKEN_TTL", default=15 * 60)
# The member center (docs/member-center.md): how long a link minted by the host app can be
# opened (seconds; once), how long the session it opens lasts, the address links point to
# (default: this server's /m/enter), and who may frame the pages (a CSP frame-ancestors list).
LOYALTY_MEMBER_LINK_TTL = env.int("LOYALTY_MEMBER_LINK_TTL", default=120)
LOYALTY_MEMBER_SESSION_SECONDS = env.int("LOYALTY_MEMBER_SESSION_SECONDS", default=2 * 60 * 60)
LOYALTY_MEMBER_CENTER_URL = env.str("LOYALTY_MEMBER_CENTER_URL", default="")
LOYALTY_MEMBER_CENTER_FRAME_ANCESTORS = env.str(
    "LOYALTY_MEMBER_CENTER_FRAME_ANCESTORS", default="'self'"
)
# Set (redis://host:6379/1): leaderboards read ranks from Redis sorted sets mirroring the
# database's scores, O(log n) at any size. Unset: ranks are counted in the database.
LOYALTY_LEADERBOARD_REDIS_URL = env.str("LOYALTY_LEADERBOARD_REDIS_URL", default="")
# Seconds a Redis command may take before Redis counts as failing; after a failure the process
# reads from the database (and marks missed writes for healing) for LOYALTY_REDIS_PAUSE seconds.
LOYALTY_REDIS_TIMEOUT = env.float("LOYALTY_REDIS_TIMEOUT", default=0.25)
LOYALTY_REDIS_PAUSE = env.float("LOYALTY_REDIS_PAUSE", default=10.0)

# Messages (e-mails, campaign.message webhooks) campaigns may send one member in 7 days, across
# campaigns (docs/campaigns.md).
LOYALTY_CONTACTS_PER_WEEK = env.int("LOYALTY_CONTACTS_PER_WEEK", default=2)

# --- E-mail -----------------------------------------------------------------------------------
# EMAIL_URL, e.g. smtp+tls://user:password@smtp.example.com:587; the console by default.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="loyalty@localhost")

# --- Logging ----------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # The handler's level too: Django's own loggers (django.request's 4xx warnings) propagate
    # to it without passing the root logger's level.
    "handlers": {"console": {"class": "logging.StreamHandler", "level": LOG_LEVEL}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
}
