"""Settings for TradingRobotPlug, read from the environment (django-environ, optional `.env`).

With nothing set, the system runs on embedded defaults: SQLite under `var/`, the embedded Redis
that `tradingrobot.embedded_redis` starts (it exports REDIS_URL to the processes it runs), the
paper broker and the synthetic market-data provider.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var"))).resolve()
# var/ holds the secret key, the SQLite database and demo credentials: owner only (0700, files
# 0600), whatever the umask.
VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
try:
    VAR_DIR.chmod(0o700)
except OSError:  # not ours to change (a mounted volume): leave it
    pass


def _private_file(path: Path) -> Path:
    """Create `path` empty with mode 0600 if missing; make an existing one 0600."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        path.chmod(0o600)
    except OSError:
        pass
    return path


# Off unless asked for: `make run` asks for it when it serves on loopback (tradingrobot.launcher),
# `make test` for the tests; the servers refuse DEBUG on a public address (tradingrobot.bind_check).
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    # A per-installation key kept under var/ (0600), so signed tokens and sessions survive
    # restarts and management commands work without settings. Production sets SECRET_KEY: every
    # web and ws process must share one.
    _key_file = VAR_DIR / "secret_key"
    if not _key_file.exists() or not _key_file.read_text().strip():
        from django.core.management.utils import get_random_secret_key

        _private_file(_key_file).write_text(get_random_secret_key())
    _private_file(_key_file)
    SECRET_KEY = _key_file.read_text().strip()

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # Not "daphne": as an app it only makes `runserver` serve ASGI, and it imports Twisted (~40 MB)
    # into every process, the Celery worker and beat included (issue 20). The `ws` process runs
    # the daphne command itself.
    # Admin modules are loaded by the URLconf (admin.autodiscover() there), not at django.setup():
    # they import the services and with them pandas, which Celery beat never needs (issue 20).
    "django.contrib.admin.apps.SimpleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_api_key",
    "corsheaders",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "tradingrobot.api",
    "django_celery_beat",
    "channels",
    "trading",
    "marketdata",
    "strategies",
    "strategies.research",
    "streaming",
    "notifications",
    "realtime",
    "audit",
    # Login throttling (dashboard and admin): after its auth app, last.
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before CommonMiddleware, so preflights and error responses carry the CORS headers too.
    "corsheaders.middleware.CorsMiddleware",
    # Before anything reads a parameter into a query: PostgreSQL refuses NUL in text.
    "tradingrobot.api.middleware.RefuseNulCharacters",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Remembers the request, so the audit log can tell who acted and from where.
    "audit.context.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Answers a locked-out login with 429 (django-axes; must come last).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "tradingrobot.urls"
ASGI_APPLICATION = "tradingrobot.asgi.application"
WSGI_APPLICATION = "tradingrobot.wsgi.application"

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

# --- Database ------------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # web, worker and beat write to one SQLite file: WAL lets readers run beside the writer and
    # IMMEDIATE transactions take the write lock up front instead of failing on upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test_db.sqlite3")}
    _db_name = Path(str(DATABASES["default"]["NAME"]))
    if _db_name.parent.is_dir():
        _private_file(_db_name)  # SQLite gives its -wal and -shm files the database's mode
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, Celery broker, cache --------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if not REDIS_URL:
    # Outside `make run`/`make test` (which start the embedded server and export REDIS_URL), a
    # running embedded server leaves its address under var/ for other commands to find.
    from tradingrobot.embedded_redis import recorded_url

    REDIS_URL = recorded_url(VAR_DIR) or "redis://127.0.0.1:6379/0"

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [REDIS_URL],
            "prefix": env.str("CHANNELS_PREFIX", default="trp"),
            "capacity": 1000,
            "expiry": 30,
        },
    }
}

CACHES = {
    "default": {
        # Django's RedisCache with one shared redis-py client per process (see tradingrobot.cache).
        "BACKEND": "tradingrobot.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("CACHE_PREFIX", default="trp"),
        "TIMEOUT": 300,
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Only a beat started without the database scheduler writes this file: never into the checkout.
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's Django fixup closes every database connection before and after each task unless this
# is set: a new PostgreSQL connection per task (a server process forked, authentication), which
# cost the `notify` worker most of its CPU per delivery (bench/notify.py). With it, the fixup
# closes them only every this many tasks, and tradingrobot.celery closes the ones that are broken
# or older than CONN_MAX_AGE around each task, as Django does around each request.
CELERY_DB_REUSE_MAX = 1000
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

# --- Auth, sessions ------------------------------------------------------------------------------
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login throttling (django-axes) for the dashboard and admin logins: after LOGIN_FAILURE_LIMIT
# failed passwords for one username, or from one client address, further attempts answer 429
# for LOGIN_COOLOFF_MINUTES, before any password is hashed. The address is read as the API reads
# it (TRUSTED_PROXY_COUNT). A correct login resets the count.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_CLIENT_IP_CALLABLE = "tradingrobot.api.auth_failures.client_ip"
AXES_VERBOSE = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
# npm installs front-end packages (lightweight-charts) into node_modules; only its dist files
# are served.
if (BASE_DIR / "node_modules" / "lightweight-charts" / "dist").exists():
    STATICFILES_DIRS.append(
        ("vendor/lightweight-charts", BASE_DIR / "node_modules" / "lightweight-charts" / "dist")
    )
WHITENOISE_USE_FINDERS = True

# --- REST API ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tradingrobot.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tradingrobot.api.permissions.HasReadScope"],
    "DEFAULT_THROTTLE_CLASSES": ["tradingrobot.api.throttling.KeyRateThrottle"],
    "DEFAULT_FILTER_BACKENDS": [
        "tradingrobot.api.filters.CommonFilterBackend",
        "tradingrobot.api.filters.Ordering",
    ],
    "EXCEPTION_HANDLER": "tradingrobot.api.errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "tradingrobot.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON, and the form encoding WordPress's wp_remote_post() sends for an array body.
    "DEFAULT_PARSER_CLASSES": [
        "tradingrobot.api.parsers.JSONParser",
        "tradingrobot.api.parsers.FormParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "tradingrobot.api.schema.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# Proxies in front of the app that append to X-Forwarded-For (nginx, a load balancer): the client
# address is read that many hops from the right. 0 (default): REMOTE_ADDR, X-Forwarded-For ignored.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
REST_FRAMEWORK["NUM_PROXIES"] = TRUSTED_PROXY_COUNT
# Failed API-key authentications per client IP before it gets 429 for the rest of the window.
AUTH_FAILURE_RATE = env.str("AUTH_FAILURE_RATE", default="20/minute")
# Requests per API key (or logged-in user, or client IP when anonymous). "N/second|minute|hour|day".
API_THROTTLE_RATE = env.str("API_THROTTLE_RATE", default="1200/minute")
# A verified API key is remembered per process this long (a revocation elsewhere takes effect
# within it; in the process that saves the key, at once). 0: verify on every request.
API_KEY_CACHE_SECONDS = env.int("API_KEY_CACHE_SECONDS", default=5)
# Cached API answers (tradingrobot.api.cache) are invalidated when their data changes; these
# bound how long one is served whatever happens (0: not cached). GET status: its clock and new
# bars show within this. GET trades: only a lost invalidation (Redis outage) could hold it longer.
API_STATUS_CACHE_SECONDS = env.int("API_STATUS_CACHE_SECONDS", default=1)
API_RESPONSE_CACHE_SECONDS = env.int("API_RESPONSE_CACHE_SECONDS", default=30)

# WordPress sites that may call the API from a browser (exact origins, e.g. https://example.com).
WORDPRESS_ORIGINS = env.list("WORDPRESS_ORIGINS", default=[])
CORS_ALLOWED_ORIGINS = WORDPRESS_ORIGINS
CORS_URLS_REGEX = r"^/(api|wp-json)/.*$"
CORS_ALLOW_CREDENTIALS = False
CORS_EXPOSE_HEADERS = ["Retry-After"]
CORS_PREFLIGHT_MAX_AGE = 3600

SPECTACULAR_SETTINGS = {
    "TITLE": "TradingRobotPlug API",
    "DESCRIPTION": (
        "The REST API of the TradingRobotPlug trading robot. Canonical prefix `/api/v1/`; every "
        "route is also served under `/wp-json/tradingrobotplug/v1/`. Authenticate with "
        "`Authorization: Bearer <api key>` (scope `read` or `trade`). Errors always answer "
        '`{"error": {"code", "message", "details"}}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["tradingrobot.api.schema.preprocess_endpoints"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "tradingrobot.api.schema.postprocess_schema",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": "trading.models.OrderStatus",
        "TimeframeEnum": "marketdata.models.Timeframe",
        "StrategyTimeframeEnum": [("5Min", "5 minutes")],
        "HealthStatusEnum": ["ok", "degraded"],
        "OkStatusEnum": ["ok"],
        "ErrorStatusEnum": ["error"],
        "ResearchRunStatusEnum": "strategies.research.models.RunStatus",
        "ResearchRunKindEnum": "strategies.research.models.RunKind",
    },
    "DISABLE_ERRORS_AND_WARNINGS": True,
}

WEBSOCKET_TOKEN_MAX_AGE = env.int("WEBSOCKET_TOKEN_MAX_AGE", default=300)
# Open sockets re-check their key or user this often (closed with 4401 once revoked/inactive),
# and one key or user may hold at most this many sockets per ws process (0: no cap).
WEBSOCKET_RECHECK_SECONDS = env.float("WEBSOCKET_RECHECK_SECONDS", default=5)
WEBSOCKET_MAX_CONNECTIONS_PER_PRINCIPAL = env.int(
    "WEBSOCKET_MAX_CONNECTIONS_PER_PRINCIPAL", default=20
)

# --- Trading, real-time streams, risk: tradingrobot/settings_trading.py ------------------------
from tradingrobot.settings_trading import *  # noqa: E402, F403

# --- Market data ---------------------------------------------------------------------------------
MARKETDATA_PROVIDER = env.str("MARKETDATA_PROVIDER", default="synthetic")
MARKETDATA_PROVIDERS = {
    "synthetic": "marketdata.providers.synthetic.SyntheticProvider",
    "alpaca": "marketdata.providers.alpaca.AlpacaProvider",
    "wordpress": "marketdata.providers.wordpress.WordPressProvider",
}
if MARKETDATA_PROVIDER not in MARKETDATA_PROVIDERS and "." not in MARKETDATA_PROVIDER:
    raise ImproperlyConfigured(
        f"MARKETDATA_PROVIDER={MARKETDATA_PROVIDER!r} is not one of "
        f"{sorted(MARKETDATA_PROVIDERS)} nor a dotted path."
    )
PRIMARY_SYMBOLS = [
    s.upper() for s in env.list("PRIMARY_SYMBOLS", default=["TSLA", "QQQ", "SPY", "NVDA"])
]
COLLECT_INTERVAL_SECONDS = env.int("COLLECT_INTERVAL_SECONDS", default=300)
if COLLECT_INTERVAL_SECONDS < 1:
    raise ImproperlyConfigured("COLLECT_INTERVAL_SECONDS must be at least 1.")
SYNTHETIC_SEED = env.int("SYNTHETIC_SEED", default=42)
# "simulated": each collection advances the market by one 5-minute bar, so the demo trades at any
# hour. "exchange": bars follow the real NYSE clock. The synthetic provider defaults to simulated.
MARKET_CLOCK = env.str(
    "MARKET_CLOCK", default="simulated" if MARKETDATA_PROVIDER == "synthetic" else "exchange"
)
if MARKET_CLOCK not in ("simulated", "exchange"):
    raise ImproperlyConfigured("MARKET_CLOCK must be 'simulated' or 'exchange'.")
HISTORY_BARS_ON_START = env.int("HISTORY_BARS_ON_START", default=156)
STALE_AFTER_SECONDS = env.int("STALE_AFTER_SECONDS", default=max(2 * COLLECT_INTERVAL_SECONDS, 60))
WORDPRESS_API_URL = env.str("WORDPRESS_API_URL", default="")

# --- Strategies ----------------------------------------------------------------------------------
STRATEGIES_DIR = Path(env.str("STRATEGIES_DIR", default=str(BASE_DIR / "strategies" / "plugins")))

# Research runs (backtests, grid searches, walk-forwards) run on the Celery queue `research`,
# consumed by the Procfile's `research` worker only. Active (queued or running) runs allowed per
# read key or dashboard user, per trade key or staff user, and in total; 0 processes = every core.
RESEARCH_MAX_ACTIVE_READ = env.int("RESEARCH_MAX_ACTIVE_READ", default=1)
RESEARCH_MAX_ACTIVE_TRADE = env.int("RESEARCH_MAX_ACTIVE_TRADE", default=3)
RESEARCH_MAX_ACTIVE = env.int("RESEARCH_MAX_ACTIVE", default=6)
RESEARCH_MAX_COMBOS = env.int("RESEARCH_MAX_COMBOS", default=5000)
RESEARCH_PROCESSES = env.int("RESEARCH_PROCESSES", default=0)

# --- Notifications (README "Notifications") ----------------------------------------------------
NOTIFICATIONS_ENABLED = env.bool("NOTIFICATIONS_ENABLED", default=True)
NOTIFICATIONS_WEBHOOK_URL = env.str("NOTIFICATIONS_WEBHOOK_URL", default="")
NOTIFICATIONS_WEBHOOK_SECRET = env.str("NOTIFICATIONS_WEBHOOK_SECRET", default="")
NOTIFICATIONS_EMAIL_TO = env.list("NOTIFICATIONS_EMAIL_TO", default=[])
TELEGRAM_BOT_TOKEN = env.str("TELEGRAM_BOT_TOKEN", default="")
TELEGRAM_CHAT_ID = env.list("TELEGRAM_CHAT_ID", default=[])
TELEGRAM_API_URL = env.str("TELEGRAM_API_URL", default="https://api.telegram.org")
NOTIFICATIONS_TIMEOUT_SECONDS = env.float("NOTIFICATIONS_TIMEOUT_SECONDS", default=5)
NOTIFICATIONS_MAX_RESPONSE_BYTES = env.int("NOTIFICATIONS_MAX_RESPONSE_BYTES", default=65536)
NOTIFICATIONS_MAX_ATTEMPTS = env.int("NOTIFICATIONS_MAX_ATTEMPTS", default=12)
NOTIFICATIONS_RETRY_BASE_SECONDS = env.float("NOTIFICATIONS_RETRY_BASE_SECONDS", default=1)
NOTIFICATIONS_RETRY_MAX_SECONDS = env.float("NOTIFICATIONS_RETRY_MAX_SECONDS", default=300)
NOTIFICATIONS_CHANNEL_CONCURRENCY = env.int("NOTIFICATIONS_CHANNEL_CONCURRENCY", default=4)
CELERY_TASK_ROUTES = {"notifications.*": {"queue": "notifications"}}
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="tradingrobot@localhost")

# --- Logging -------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        # django-axes logs every login at INFO; lockouts are WARNING.
        "axes": {"level": "WARNING"},
    },
}

# --- Market data: faults, collection hours, WordPress provider (issue 4) ----------------------
# Retries inside one collection (full-jitter exponential backoff), then a per-provider breaker.
MARKETDATA_RETRY_ATTEMPTS = env.int("MARKETDATA_RETRY_ATTEMPTS", default=3)
MARKETDATA_RETRY_BASE_SECONDS = env.float("MARKETDATA_RETRY_BASE_SECONDS", default=0.5)
MARKETDATA_RETRY_MAX_SECONDS = env.float("MARKETDATA_RETRY_MAX_SECONDS", default=5.0)
MARKETDATA_BREAKER_THRESHOLD = env.int("MARKETDATA_BREAKER_THRESHOLD", default=3)
MARKETDATA_BREAKER_COOLDOWN_SECONDS = env.float("MARKETDATA_BREAKER_COOLDOWN_SECONDS", default=60)
MARKETDATA_BREAKER_MAX_COOLDOWN_SECONDS = env.float(
    "MARKETDATA_BREAKER_MAX_COOLDOWN_SECONDS", default=1800
)
if MARKETDATA_RETRY_ATTEMPTS < 1 or MARKETDATA_BREAKER_THRESHOLD < 1:
    raise ImproperlyConfigured(
        "MARKETDATA_RETRY_ATTEMPTS and MARKETDATA_BREAKER_THRESHOLD must be at least 1."
    )
# Under MARKET_CLOCK=exchange, collection skips when the NYSE is closed (after a grace period for
# the session's last bar) unless this is set.
MARKETDATA_COLLECT_WHEN_CLOSED = env.bool("MARKETDATA_COLLECT_WHEN_CLOSED", default=False)
# The timezone of the WordPress site's MySQL datetimes (WordPress "Timezone" setting).
# TradingRobotPlug sites show US market data, so New York is the default; set UTC if the site
# runs on UTC.
WORDPRESS_TIMEZONE = env.str("WORDPRESS_TIMEZONE", default="America/New_York")
try:
    from zoneinfo import ZoneInfo

    ZoneInfo(WORDPRESS_TIMEZONE)
except Exception as _exc:  # noqa: BLE001 - any lookup failure is a configuration error
    raise ImproperlyConfigured(
        f"WORDPRESS_TIMEZONE={WORDPRESS_TIMEZONE!r} is not a known IANA timezone."
    ) from _exc
# Optional header sent to the WordPress site, "Name: value" (e.g. "Authorization: Bearer abc").
WORDPRESS_AUTH_HEADER = env.str("WORDPRESS_AUTH_HEADER", default="")
if WORDPRESS_AUTH_HEADER and ":" not in WORDPRESS_AUTH_HEADER:
    raise ImproperlyConfigured("WORDPRESS_AUTH_HEADER must look like 'Name: value'.")
WORDPRESS_TIMEOUT_SECONDS = env.float("WORDPRESS_TIMEOUT_SECONDS", default=10)
# Every outbound HTTP request (WordPress, Alpaca; core.http): the most one request may
# take from connect to last byte, and the largest body read.
OUTBOUND_HTTP_DEADLINE_SECONDS = env.float("OUTBOUND_HTTP_DEADLINE_SECONDS", default=30)
OUTBOUND_HTTP_MAX_BYTES = env.int("OUTBOUND_HTTP_MAX_BYTES", default=20 * 1024 * 1024)

# --- Security headers and production -------------------------------------------------------------
# Always on: no MIME sniffing, no framing, no referrer leaks across origins.
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Production is DEBUG=false (with SECRET_KEY and ALLOWED_HOSTS set) behind a TLS-terminating proxy
# that sets X-Forwarded-Proto. `manage.py check --deploy` is clean with these defaults.
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # A load balancer probes health over plain HTTP on the private network.
    SECURE_REDIRECT_EXEMPT = [r"^api/v1/health$"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SESSION_COOKIE_HTTPONLY = True
