"""The one settings module. Every value comes from an environment variable with a safe
development default; README.md lists them all.

One module on purpose, past our usual length: an operator reads every setting and its
default in one place, in the order Django applies them, and nothing is overridden by an
import elsewhere."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import dj_database_url
import django_stubs_ext
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_str

django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", True)


def _development_secret_key() -> str:
    """Generated once and kept under var/, so sessions and signed links survive restarts."""
    path = VAR_DIR / "secret_key.txt"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set SECRET_KEY: it is required when DEBUG is false.")
    SECRET_KEY = _development_secret_key()

PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [PUBLIC_BASE_URL])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_celery_beat",
    "anymail",
    "csp",
    "django_ratelimit",
    "axes",
    "core",
    "crm",
    "segments",
    "campaigns",
    "triggers",
    "journeys",
    "devtools",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

# --- Database -------------------------------------------------------------------------------
# SQLite by default, in WAL mode so the web server, the worker and beat write concurrently;
# IMMEDIATE transactions take the write lock up front instead of failing mid-transaction.
_SQLITE_DEFAULT = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", _SQLITE_DEFAULT), conn_max_age=env_int("DB_CONN_MAX_AGE", 0)
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
        ),
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # Tests that start a real worker need the test database in a file the worker can open.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-db-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------------------------
# Rate limits (subscribe form, API keys) and admin lockouts count in Django's cache, which
# must be shared by every web process: Redis when REDIS_URL is set, otherwise a table in the
# database (created by crm's migrations), so the embedded default needs no server either.
REDIS_URL = env_str("REDIS_URL")  # also: the send-rate token bucket lives in Redis when set
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "cadence",
        }
    }
else:
    CACHES = {
        "default": {
            # Django's DatabaseCache with atomic increments that keep the expiry (see it).
            "BACKEND": "config.cache.DatabaseCache",
            "LOCATION": "cadence_cache",
        }
    }

# --- Auth, i18n, time -----------------------------------------------------------------------
# Admin login lockout (django-axes): AxesStandaloneBackend first refuses every login, right
# password or not, for a (username, client address) pair that failed AXES_FAILURE_LIMIT times
# in a row, for AXES_COOLOFF_MINUTES (restarted by each failed try meanwhile). The pair, not
# the username alone: a stranger guessing from elsewhere cannot lock the real admin out from
# everywhere. The address is REMOTE_ADDR, never a forwarded-for header a client could write
# to get fresh tries; behind a proxy, the proxy must set REMOTE_ADDR. Attempts are kept in
# the database (Axes → Access attempts in admin, where a lock can be lifted).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_MINUTES", 15) / 60  # hours, as a float
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)
AXES_LOCKOUT_CALLABLE = "config.admin_lockout.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# --- Security -------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# TRUSTED_PROXY=true only behind a proxy that strips or overwrites X-Forwarded-Proto: the
# header is then believed to say the request came over https. Without such a proxy anyone
# could send it, and Django would treat plain http as secure.
TRUSTED_PROXY = env_bool("TRUSTED_PROXY", False)
if TRUSTED_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)

# --- Content-Security-Policy (django-csp) -------------------------------------------------
# Pages run scripts and load styles and images from this site only, so an injected <script>,
# onclick= or style= is refused by the browser: our pages keep theirs in static files
# (<app>/static/<app>/). The email preview alone also allows inline styles and remote
# images, for the email inside its sandboxed frame (campaigns/admin/templates.py).
_CSP_DIRECTIVES: dict[str, list[str]] = {
    "default-src": [SELF],
    "script-src": [SELF],
    "style-src": [SELF],
    "img-src": [SELF, "data:"],
    "object-src": [NONE],
    "base-uri": [NONE],
    "frame-ancestors": [NONE],
    "form-action": [SELF],
}
# Optional: where browsers POST violation reports (not a setting of its own: django-csp 4
# refuses to start beside a setting named like its old CSP_* ones).
if env_str("CSP_REPORT_URI"):
    _CSP_DIRECTIVES["report-uri"] = [env_str("CSP_REPORT_URI")]
CONTENT_SECURITY_POLICY = {"DIRECTIVES": _CSP_DIRECTIVES}

# --- Email ----------------------------------------------------------------------------------
# EMAIL_ESP=postmark (or mailgun, sendgrid, amazon_ses, brevo, ...) selects anymail's backend
# for that ESP; every ANYMAIL_<NAME> variable becomes ANYMAIL["<NAME>"], for example
# ANYMAIL_POSTMARK_SERVER_TOKEN, ANYMAIL_WEBHOOK_SECRET or ANYMAIL_POSTMARK_API_URL.
EMAIL_ESP = env_str("EMAIL_ESP")
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    f"anymail.backends.{EMAIL_ESP}.EmailBackend"
    if EMAIL_ESP
    else "campaigns.channels.email_file.EmlFileBackend",
)
EMAIL_OUTBOX_DIR = Path(env_str("EMAIL_OUTBOX_DIR", str(VAR_DIR / "outbox" / "email")))


def _anymail_settings() -> dict[str, str]:
    return {
        key.removeprefix("ANYMAIL_"): value
        for key, value in os.environ.items()
        if key.startswith("ANYMAIL_") and value
    }


ANYMAIL = _anymail_settings()
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Cadence Demo Shop <hello@example.com>")
SERVER_EMAIL = env_str("SERVER_EMAIL", DEFAULT_FROM_EMAIL)
# CAN-SPAM: every marketing email carries the sender's physical postal address.
SENDER_POSTAL_ADDRESS = env_str(
    "SENDER_POSTAL_ADDRESS", "Cadence Demo Shop, 1 Example Street, Springfield, USA"
)
UNSUBSCRIBE_MAILTO = env_str("UNSUBSCRIBE_MAILTO")

# --- SMS ------------------------------------------------------------------------------------
# SMS_BACKEND=twilio sends through Twilio; the default appends JSON lines to a file.
SMS_BACKEND = env_str("SMS_BACKEND", "file")
SMS_OUTBOX_FILE = Path(env_str("SMS_OUTBOX_FILE", str(VAR_DIR / "outbox" / "sms.jsonl")))
TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID")
TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN")
TWILIO_MESSAGING_SERVICE_SID = env_str("TWILIO_MESSAGING_SERVICE_SID")
TWILIO_FROM_NUMBER = env_str("TWILIO_FROM_NUMBER")
# Tests and benchmarks point the real twilio client at a fake server on 127.0.0.1.
TWILIO_API_BASE_URL = env_str("TWILIO_API_BASE_URL")
SMS_OPT_OUT_TEXT = env_str("SMS_OPT_OUT_TEXT", "Reply STOP to opt out.")
SMS_HELP_TEXT = env_str(
    "SMS_HELP_TEXT", "Cadence Demo Shop: reply STOP to unsubscribe. Msg&data rates may apply."
)
if SMS_BACKEND == "twilio" and not (TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN):
    raise ImproperlyConfigured(
        "SMS_BACKEND=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, and either "
        "TWILIO_MESSAGING_SERVICE_SID or TWILIO_FROM_NUMBER."
    )

WEBHOOK_SECRET = env_str("WEBHOOK_SECRET")

# --- Contacts -------------------------------------------------------------------------------
PHONE_DEFAULT_REGION = env_str("PHONE_DEFAULT_REGION", "US")
# The largest CSV file the admin import accepts (1 MB = 1,000,000 bytes). Checked while the
# upload is read (crm/uploads.py, first of the upload handlers), so a bigger file is dropped
# before it reaches memory or disk; Django keeps an upload under 2.5 MB in memory and spools
# a bigger one to a temporary file (FILE_UPLOAD_MAX_MEMORY_SIZE, Django's default).
IMPORT_MAX_UPLOAD_MB = env_int("IMPORT_MAX_UPLOAD_MB", 50)
FILE_UPLOAD_HANDLERS = [
    "crm.uploads.UploadSizeLimitHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
# Double opt-in: how long a confirmation link stays valid, and the consent words the public
# subscribe form shows (recorded with their version in the consent ledger when confirmed).
OPTIN_EXPIRY_HOURS = env_int("OPTIN_EXPIRY_HOURS", 72)
SUBSCRIBE_CONSENT_TEXT = env_str(
    "SUBSCRIBE_CONSENT_TEXT",
    "Yes, send me news and offers by email. I can unsubscribe at any time with the link in "
    "every email.",
)
# The same words in Simplified Chinese, shown (and recorded) when the form is shown in zh-hans:
# a business writes its own, as it does the English ones.
SUBSCRIBE_CONSENT_TEXT_ZH_HANS = env_str(
    "SUBSCRIBE_CONSENT_TEXT_ZH_HANS",
    "是的，请通过电子邮件向我发送新闻和优惠。我可以随时通过每封邮件中的链接退订。",  # noqa: RUF001
)
SUBSCRIBE_CONSENT_VERSION = env_str("SUBSCRIBE_CONSENT_VERSION", "subscribe-2026-01")
# POSTs to /subscribe/ per client IP (IPv6: per /64), django-ratelimit's "count/period" with
# period s, m, h or d; windows are fixed and staggered per client (docs/consent.md).
SUBSCRIBE_RATE_PER_IP = env_str("SUBSCRIBE_RATE_PER_IP", "10/h")
if not re.fullmatch(r"[1-9][0-9]*/[0-9]*[smhd]", SUBSCRIBE_RATE_PER_IP):
    raise ImproperlyConfigured(
        f"SUBSCRIBE_RATE_PER_IP={SUBSCRIBE_RATE_PER_IP!r}: write requests per period, "
        "e.g. 10/h, 3/m, 100/d or 20/15m."
    )

# --- Ingestion API --------------------------------------------------------------------------
# Requests per API key, over every endpoint together: a sustained rate and a burst, each
# django-ratelimit's "count/period" (fixed windows, staggered per key). Over either, the API
# answers 429 with Retry-After (docs/api.md). An empty value turns that limit off, e.g. for a
# benchmark posting faster than any client should.


def _api_rate(name: str, default: str) -> str:
    # Unlike env_str, a variable set to "" (or "off") means no limit rather than the default.
    value = os.environ.get(name, default).strip()
    return "" if value.lower() in {"", "off"} else value


API_RATE_SUSTAINED = _api_rate("API_RATE_SUSTAINED", "600/m")
API_RATE_BURST = _api_rate("API_RATE_BURST", "60/s")
for _name, _rate in (
    ("API_RATE_SUSTAINED", API_RATE_SUSTAINED),
    ("API_RATE_BURST", API_RATE_BURST),
):
    if _rate and not re.fullmatch(r"[1-9][0-9]*/[0-9]*[smhd]", _rate):
        raise ImproperlyConfigured(
            f"{_name}={_rate!r}: write requests per period, e.g. 600/m, 60/s or 5000/h, "
            "or leave it empty for no limit."
        )

# --- django-ratelimit -----------------------------------------------------------------------
# Counters live in the default cache (above). The client is REMOTE_ADDR, never a forwarded-for
# header a client can write; behind a proxy, the proxy must set REMOTE_ADDR.
RATELIMIT_USE_CACHE = "default"
RATELIMIT_IP_META_KEY = "crm.views.client_ip_for_rate_limit"
SILENCED_SYSTEM_CHECKS = [
    # "cache backend ... is not officially supported": django-ratelimit lists only memcached
    # and django-redis. Django's own RedisCache increments with INCR (atomic, keeps the TTL),
    # and config.cache.DatabaseCache increments under a row lock keeping the expiry
    # (tests/config/test_cache.py); both are shared by every process.
    "django_ratelimit.W001",
]

# --- Celery ---------------------------------------------------------------------------------
# A real broker with no server by default: kombu's SQLAlchemy transport on a SQLite file.
CELERY_BROKER_URL = env_str(
    "CELERY_BROKER_URL", f"sqla+sqlite:///{VAR_DIR / 'celery-broker.sqlite3'}"
)
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
# A task is acknowledged after it ran, and given back if its worker dies: safe because every
# send is claimed by a conditional UPDATE before it goes out.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "campaigns.tasks.*": {"queue": "dispatch"},
    "triggers.tasks.*": {"queue": "evaluation"},
    "journeys.tasks.*": {"queue": "evaluation"},
    "campaigns.webhook_tasks.*": {"queue": "webhooks"},
}
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
if CELERY_BROKER_URL.startswith("sqla+"):
    # Passed to SQLAlchemy's create_engine: wait for SQLite's write lock instead of failing.
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {"connect_args": {"timeout": 30}}
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
DJANGO_CELERY_BEAT_TZ_AWARE = True

# --- Admin bootstrap ------------------------------------------------------------------------
ADMIN_USERNAME = env_str("ADMIN_USERNAME", "admin")
ADMIN_EMAIL = env_str("ADMIN_EMAIL", "admin@example.com")
ADMIN_PASSWORD = env_str("ADMIN_PASSWORD")

# --- Logging --------------------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django.server": {"level": "INFO"},
        "axes.apps": {"level": "WARNING"},  # its start-up banner on every command
    },
}

# --- Segment analytics (docs/segments.md) ---------------------------------------------------
LIFECYCLE_NEW_DAYS = env_int("LIFECYCLE_NEW_DAYS", 30)  # new: first seen this recently
LIFECYCLE_DORMANT_DAYS = env_int("LIFECYCLE_DORMANT_DAYS", 60)  # dormant: no activity this long
LIFECYCLE_CHURNED_DAYS = env_int("LIFECYCLE_CHURNED_DAYS", 180)  # churned: none for this long
RFM_PERIOD_DAYS = env_int("RFM_PERIOD_DAYS", 365)  # purchases the RFM scores cover
CLV_HORIZON_DAYS = env_int("CLV_HORIZON_DAYS", 30)  # expected purchases in the next N days

# --- Segments -------------------------------------------------------------------------------
# Below this many members a segment is flagged "too small to act on" (its default min_size).
SEGMENT_MIN_SIZE = env_int("SEGMENT_MIN_SIZE", 100)
# Warn when more than this share (percent) of a segment's members are in another segment.
SEGMENT_OVERLAP_WARNING_PERCENT = env_int("SEGMENT_OVERLAP_WARNING_PERCENT", 90)
# Contacts checked per refresh batch (one transaction and one membership_changed signal each).
SEGMENT_REFRESH_BATCH_SIZE = env_int("SEGMENT_REFRESH_BATCH_SIZE", 5000)

# --- Customer links ---------------------------------------------------------------------------
# Unsubscribe and preference links stay valid this long (at least a year: people act on old mail).
TOKEN_MAX_AGE_DAYS = env_int("TOKEN_MAX_AGE_DAYS", 400)

# --- Consent pages and provider webhooks (docs: README "Consent") ----------------------------
# Topics a person can choose per channel in the preference centre; each is a consent purpose.
CONSENT_TOPICS = env_list("CONSENT_TOPICS", ["marketing", "newsletter", "offers"])
# The version recorded in the ledger with the words the unsubscribe and preference pages show.
CONSENT_PAGES_TEXT_VERSION = env_str("CONSENT_PAGES_TEXT_VERSION", "consent-pages-2026-01")
# WEBHOOK_SECRET ("user:password") doubles as anymail's tracking-webhook basic auth unless
# ANYMAIL_WEBHOOK_SECRET names its own.
if WEBHOOK_SECRET:
    ANYMAIL.setdefault("WEBHOOK_SECRET", WEBHOOK_SECRET)

# --- Dispatch (docs/campaigns.md) -------------------------------------------------------------
DEFAULT_SEND_TIMEZONE = env_str("DEFAULT_SEND_TIMEZONE", "UTC")  # for contacts with no zone
SEND_BATCH_SIZE = env_int("SEND_BATCH_SIZE", 200)  # delivery ids per dispatch task
SEND_MAX_ATTEMPTS = env_int("SEND_MAX_ATTEMPTS", 5)  # provider attempts before failed
SEND_RETRY_BASE_SECONDS = env_int("SEND_RETRY_BASE_SECONDS", 30)  # first backoff, then doubled
SEND_RATE_EMAIL_PER_SECOND = env_int("SEND_RATE_EMAIL_PER_SECOND", 0)  # all workers; 0 = no limit
SEND_RATE_SMS_PER_SECOND = env_int("SEND_RATE_SMS_PER_SECOND", 0)  # all workers; 0 = no limit
SEND_STALE_CLAIM_MINUTES = env_int("SEND_STALE_CLAIM_MINUTES", 15)  # then a worker is presumed lost
SEND_REQUEUE_AFTER_MINUTES = env_int("SEND_REQUEUE_AFTER_MINUTES", 60)  # queued rows re-enqueued
SMS_WINDOW_START_HOUR = env_int("SMS_WINDOW_START_HOUR", 8)  # SMS quiet hours end, local time
SMS_WINDOW_END_HOUR = env_int("SMS_WINDOW_END_HOUR", 21)  # SMS quiet hours start, local time

# --- Template rendering limits (docs/campaigns.md, "Limits") ---------------------------------
# A rendered email over this many bytes is not sent (and no value or loop inside a render may
# grow past this many characters); an SMS over this many characters, opt-out text included,
# is not sent (Twilio's own maximum is 1,600).
RENDER_MAX_EMAIL_BYTES = env_int("RENDER_MAX_EMAIL_BYTES", 1_000_000)
RENDER_MAX_SMS_CHARS = env_int("RENDER_MAX_SMS_CHARS", 1_600)
# Refused when a template is saved: deeper {% for %} nesting, wider |ljust/|center/|rjust,
# |stringformat widths and |floatformat decimals.
RENDER_MAX_LOOP_DEPTH = env_int("RENDER_MAX_LOOP_DEPTH", 2)
RENDER_MAX_FILTER_WIDTH = env_int("RENDER_MAX_FILTER_WIDTH", 200)
# Stopped while rendering: loop passes in all (inner loops count each pass) and time per field.
RENDER_MAX_LOOP_ITERATIONS = env_int("RENDER_MAX_LOOP_ITERATIONS", 10_000)
RENDER_MAX_SECONDS = env_int("RENDER_MAX_SECONDS", 2)

# --- Triggers (docs/triggers.md) -------------------------------------------------------------
# Outgoing webhooks are signed with HMAC-SHA256 over the body (X-Cadence-Signature).
TRIGGER_WEBHOOK_SECRET = env_str("TRIGGER_WEBHOOK_SECRET")
# Private, loopback and link-local webhook destinations are refused unless this is true.
TRIGGER_WEBHOOKS_ALLOW_PRIVATE = env_bool("TRIGGER_WEBHOOKS_ALLOW_PRIVATE", False)
# Workers look for edited rules at most this often (seconds) and swap rulesets live.
TRIGGER_RULES_CHECK_SECONDS = env_int("TRIGGER_RULES_CHECK_SECONDS", 2)
# Contacts per snapshot batch (a few queries per batch, whatever its size).
TRIGGER_EVALUATION_BATCH_SIZE = env_int("TRIGGER_EVALUATION_BATCH_SIZE", 500)
FORMS_URLFIELD_ASSUME_HTTPS = True  # Django 6 behaviour now: a scheme-less URL means https
