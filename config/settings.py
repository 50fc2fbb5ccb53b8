"""Django settings, read from the environment. Defaults serve the embedded demo."""
from __future__ import annotations

from pathlib import Path

from .env import ConfigurationError, database_from_url, env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

DJANGO_ENV = env_str("DJANGO_ENV", "development")
if DJANGO_ENV not in {"development", "production"}:
    raise ConfigurationError(f"DJANGO_ENV must be 'development' or 'production', got {DJANGO_ENV!r}")
PRODUCTION = DJANGO_ENV == "production"

if PRODUCTION:
    # A production server must never run with a key that is in the repository or with debug pages.
    SECRET_KEY = env_str("SECRET_KEY")
    DEBUG = env_bool("DEBUG", False)
    if DEBUG:
        raise ConfigurationError("DEBUG=1 is refused with DJANGO_ENV=production")
else:
    SECRET_KEY = env_str("SECRET_KEY", "demo-only-insecure-key-do-not-use-in-production")
    DEBUG = env_bool("DEBUG", True)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "annotation",
    "consensus",
    "modeling",
    "frontend",
    # config is an app only for its management commands (`healthz`), which sit above every app.
    "config",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

DATABASES = {
    "default": database_from_url(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"), base_dir=str(BASE_DIR)
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ru", "Русский")]
LOCALE_PATHS = [BASE_DIR / "frontend" / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))
# Radiographs are never served from MEDIA_URL: the API streams them after a permission check.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))

# Keys the HMAC that turns a DICOM PatientID into a pseudonym. Kept apart from SECRET_KEY so that
# rotating the signing key does not give a returning patient a new pseudonym.
PSEUDONYM_KEY = env_str("PSEUDONYM_KEY", SECRET_KEY)

# Where the reader workspace gets model suggestions: annotation names no other app, so the
# modeling app is plugged in here.
SUGGESTION_PROVIDER = "modeling.selectors.suggestion_payload"
# Likewise the lead dashboard's marked "model" row: {name: {(radiograph id, area id): grade}}.
MODEL_READER_PROVIDER = "modeling.selectors.model_reader_labels"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Bulk grade saves are a few kilobytes; anything far larger is refused before parsing.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 1_000_000)
# Upper bound on decoded image size, to refuse decompression bombs during ingestion.
MAX_IMAGE_PIXELS = env_int("MAX_IMAGE_PIXELS", 80_000_000)

if PRODUCTION:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first, so an anonymous script is told 401 with a WWW-Authenticate header.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "annotation.apis.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "RA joint scoring API",
    "DESCRIPTION": "Grades of joint damage (Sharp/van der Heijde) on hand radiographs. Research use only.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema describes endpoints, not data: readable without logging in.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # Several models have a `status` or `source`; name each choice set after its model.
    "ENUM_NAME_OVERRIDES": {
        "AssignmentStatusEnum": "annotation.models.Assignment.Status",
        "RadiographStatusEnum": "annotation.models.Radiograph.Status",
        "GradeSourceEnum": "annotation.models.Grade.Source",
        "LandmarkSourceEnum": "annotation.models.Landmark.Source",
    },
}

# Celery. The demo's broker is kombu's filesystem transport, which needs no server;
# production and CI point CELERY_BROKER_URL at Redis.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://localhost//")
BROKER_DIR = Path(env_str("BROKER_DIR", str(VAR_DIR / "broker")))
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(BROKER_DIR / "out"),
        "data_folder_out": str(BROKER_DIR / "out"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {}
)
if CELERY_BROKER_URL.startswith("filesystem"):
    # The web process and the worker both need these folders before the first message.
    for _folder in ("out", "processed", "control"):
        (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = True  # a crashed worker's task is redelivered, not lost
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ROUTES = {
    "modeling.tasks.model_train_task": {"queue": "training"},
    "modeling.tasks.model_predict_task": {"queue": "inference"},
}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# --- Production serving: static files, TLS, media storage, offline API docs, health --------------

# Swagger UI and ReDoc come from this server, not a CDN: the hospital networks this runs on are
# often cut off from the internet.
INSTALLED_APPS.insert(INSTALLED_APPS.index("drf_spectacular") + 1, "drf_spectacular_sidecar")
SPECTACULAR_SETTINGS.update({"SWAGGER_UI_DIST": "SIDECAR", "SWAGGER_UI_FAVICON_HREF": "SIDECAR", "REDOC_DIST": "SIDECAR"})

# /healthz and /livez answer before host validation and the HTTPS redirect: container
# healthchecks call gunicorn on its loopback address, over plain HTTP, with no proxy in between.
MIDDLEWARE.insert(0, "config.health.HealthCheckMiddleware")

# Media (radiographs, renditions, heatmaps, checkpoints): local disk by default; with S3_BUCKET set,
# any S3-compatible object store, so web servers and workers can run on different machines.
# Objects stay private: radiographs reach a browser only through the permission-checked API.
S3_BUCKET = env_str("S3_BUCKET", "")
if S3_BUCKET:
    from botocore.config import Config as _BotoConfig

    _media_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            # Empty values fall back to boto3's own chain (instance roles, ~/.aws, AWS_* variables).
            "endpoint_url": env_str("S3_ENDPOINT_URL", "") or None,
            "region_name": env_str("S3_REGION", "") or None,
            "access_key": env_str("S3_ACCESS_KEY_ID", "") or None,
            "secret_key": env_str("S3_SECRET_ACCESS_KEY", "") or None,
            "location": env_str("S3_PREFIX", ""),
            # MinIO and most S3-compatible stores need path-style URLs; AWS accepts both.
            "addressing_style": env_str("S3_ADDRESSING_STYLE", "path"),
            "signature_version": "s3v4",
            "default_acl": None,  # the bucket's own policy, which must be private
            "querystring_auth": True,
            "querystring_expire": 60,
            # A store that does not answer must fail a request in seconds, not hang a worker.
            "client_config": _BotoConfig(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3}),
        },
    }
else:
    _media_storage = {"BACKEND": "config.storage.AtomicFileSystemStorage"}
STORAGES = {
    "default": _media_storage,
    # Production serves its own hashed, compressed static files (WhiteNoise) behind any proxy.
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# TLS is terminated by the reverse proxy (Caddy in docker-compose.yml), which sets
# X-Forwarded-Proto. PLAIN_HTTP=1 is for a trusted internal network without TLS only: it turns
# off the HTTPS redirect, HSTS and secure cookies, and `check --deploy` then says so.
PLAIN_HTTP = env_bool("PLAIN_HTTP", False)
if PRODUCTION:
    MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1, "whitenoise.middleware.WhiteNoiseMiddleware")
    if PLAIN_HTTP:
        SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = False
        SECURE_SSL_REDIRECT = False
        SECURE_HSTS_SECONDS = 0
    else:
        SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
        SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
        SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
        SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)

# Hardening ------------------------------------------------------------------------------------
# Error pages, admin e-mails and log tracebacks withhold request values, uploaded files, frame
# variables and exception messages in every mode: an uploaded DICOM header is patient data.
DEFAULT_EXCEPTION_REPORTER_FILTER = "config.redaction.RedactingReporterFilter"
DEFAULT_EXCEPTION_REPORTER = "config.redaction.RedactingExceptionReporter"
LOGGING["formatters"]["plain"]["class"] = "config.redaction.RedactingFormatter"
# JSON nested deeper than the parser's limit is a 400, like any other malformed body.
REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"] = [
    "config.parsers.BoundedJSONParser",
    "rest_framework.parsers.FormParser",
    "rest_framework.parsers.MultiPartParser",
]
# pydicom's warnings about malformed elements quote the element's value.
LOGGING.setdefault("loggers", {})["pydicom"] = {"level": "ERROR"}
# Keys committed in this repository: anyone can recompute a pseudonym or forge a session with them.
COMMITTED_DEMO_KEYS = ("demo-only-insecure-key-do-not-use-in-production",)
# DICOM import refuses a committed or short PSEUDONYM_KEY, since HMAC(key, Patient ID) is then
# reversible by anyone holding a list of IDs; only a throw-away demo may set this.
ALLOW_DEMO_PSEUDONYM_KEY = env_bool("ALLOW_DEMO_PSEUDONYM_KEY", False)
if PRODUCTION and (
    len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure-") or SECRET_KEY in COMMITTED_DEMO_KEYS
):
    raise ConfigurationError(
        "SECRET_KEY is weak: production needs at least 50 characters with at least 5 different ones, "
        "e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )
# Login throttling (django-axes): after LOGIN_FAILURE_LIMIT wrong passwords for one username from
# one address, that pair is locked for LOGIN_LOCKOUT_MINUTES; staff unlock it in the admin by
# deleting the access attempt. Per pair, so a stranger cannot lock a reader out from elsewhere.
INSTALLED_APPS.append("axes")
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
MIDDLEWARE.append("axes.middleware.AxesMiddleware")
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = __import__("datetime").timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Only the connection's own address counts, unless a number of trusted reverse proxies is given:
# a client could otherwise dodge the lock by sending its own X-Forwarded-For.
AXES_IPWARE_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR") if AXES_IPWARE_PROXY_COUNT else ("REMOTE_ADDR",)
# The schema documents the error answers every operation shares (400/401/403/404/409).
SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"] = ["drf_spectacular.hooks.postprocess_schema_enums", "config.schema.error_responses"]
