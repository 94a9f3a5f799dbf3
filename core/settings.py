"""Django settings, derived from core.config (the only place the environment is read)."""

from __future__ import annotations

import os
import sys

from core import config as _config
from outpost import logs as _logs

try:
    CONFIG = _config.load()
except _config.ConfigError as exc:  # one message naming every bad variable, then stop
    print(f"gatehouse: {exc}", file=sys.stderr)
    raise SystemExit(2) from None

DATA_DIR = CONFIG.data_dir
SECRET_KEY = CONFIG.secret_key
DEBUG = CONFIG.debug
# Django's Host check is off: core.web.hosts.KnownHostMiddleware (before any view) answers only the known
# host names, one of which (the Base URL system setting) comes from the database; names added here count.
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "core.urls"
ASGI_APPLICATION = "core.asgi.application"
AUTH_USER_MODEL = "authentik_core.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "core.accounts.admin_app.GatehouseAdminConfig",  # django.contrib.admin; its login goes through the flow
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "core.policies",
    "core.accounts",
    "core.crypto",
    "core.flows",
    "core.events",
    "core.oidc",
    "core.providers.proxy",
    "core.providers.ldap",
    "core.providers.radius",
    "core.outposts",
    "core.blueprints",
    "core.system",
    "core.mail",
    "core.web",
]

MIDDLEWARE = [
    "core.web.security.SecurityHeadersMiddleware",  # Secure cookies on HTTPS, Content-Security-Policy
    "core.web.hosts.KnownHostMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "core.input_guard.InputGuardMiddleware",  # NUL and over-deep JSON: 400 before any view
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "core.accounts.sessions.RevokedSessionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.events.audit.AuditMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # the admin's breadcrumbs name authentik's menus (core/accounts/templatetags/admin_menus.py): Django's admin
        # templates extended there, found before django.contrib.admin's own
        "DIRS": [str(CONFIG.data_dir / "templates"), os.path.join(os.path.dirname(__file__), "accounts", "admin_templates")],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

if CONFIG.postgresql:
    from core import dbrouter as _dbrouter

    # the primary as "default", each AUTHENTIK_POSTGRESQL__READ_REPLICAS__<n>__* as "replica_<n>"
    DATABASES = _dbrouter.databases(CONFIG.postgresql)
    if CONFIG.postgresql.read_replicas:
        DATABASE_ROUTERS = ["core.dbrouter.ReplicaRouter"]
        MIDDLEWARE.insert(0, "core.dbrouter.PinMiddleware")
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(CONFIG.data_dir / "gatehouse.sqlite3"),
            # Each pool thread keeps its connection (opening one and its PRAGMAs cost ~1 ms a request).
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }

if CONFIG.redis:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            # a list: Django splits a string LOCATION at commas, which separate a Sentinel URL's sentinels
            "LOCATION": [CONFIG.redis.url],
            "KEY_PREFIX": "gatehouse",
            "OPTIONS": {"pool_class": "protocols.redis_url.SentinelPool"} if CONFIG.redis.sentinel_url else {},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Sessions are rows in django_session (the seeds count them with SQL), cached when Redis is there.
# Django's db / cached_db stores without the existence probe before each new key (core/accounts/session_store.py).
SESSION_ENGINE = "core.accounts.session_store_cached" if CONFIG.redis else "core.accounts.session_store"
SESSION_COOKIE_NAME = "authentik_session"
SESSION_COOKIE_AGE = CONFIG.session_lifetime
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_NAME = "authentik_csrf"
CSRF_TRUSTED_ORIGINS: list[str] = []

PASSWORD_HASHERS = [
    "core.accounts.hashers.Argon2idHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]

STATIC_URL = "/static/"
LOGIN_URL = "/flows/-/default/authentication/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["core.api.permissions.IsSuperuser"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.Pagination",
    "PAGE_SIZE": 100,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "core.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Gatehouse",
    "DESCRIPTION": "authentik-compatible identity API",
    "VERSION": "3.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Choice sets sharing a field name or values get stable names (core/api/schema.py).
    "ENUM_NAME_OVERRIDES": {"UserTypeEnum": "core.accounts.models.UserTypes",
                            "OutpostTypeEnum": "core.outposts.models.OutpostType",
                            "LDAPAPIAccessMode": "core.api.schema.LDAP_MODES"},
}

if CONFIG.email:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = CONFIG.email.host
    EMAIL_PORT = CONFIG.email.port
    EMAIL_HOST_USER = CONFIG.email.username
    EMAIL_HOST_PASSWORD = CONFIG.email.password
    EMAIL_USE_TLS = CONFIG.email.use_tls
    EMAIL_USE_SSL = CONFIG.email.use_ssl
    DEFAULT_FROM_EMAIL = CONFIG.email.sender
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    DEFAULT_FROM_EMAIL = "gatehouse@localhost"
EMAIL_TIMEOUT = 10  # seconds (authentik's email.timeout): an unreachable server cannot hold a sender

# AUTHENTIK_LOG_LEVEL sets Gatehouse's own loggers; other libraries stay at info unless it is trace, and the
# ones that log secrets at debug never go below info (outpost/logs.py).
_ROOT_LEVEL, _ = _logs.levels(CONFIG.log_level)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "structured"}},
    "formatters": {"structured": {"()": "outpost.logs.StructuredFormatter"}},
    "root": {"handlers": ["default"], "level": _ROOT_LEVEL},
    "loggers": {
        **{name: {"level": level} for name, level in _logs.logger_levels(CONFIG.log_level).items()},
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
    },
}
