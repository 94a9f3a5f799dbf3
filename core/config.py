"""Core configuration from the environment, with authentik's variable names.

Read once into a frozen dataclass; every bad value is reported together, naming the variable and
what it expects (DESIGN.md §4.5). Nothing else in the core reads ``os.environ``.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import quote, urlencode

from protocols import trust
from protocols.trust import DEFAULT_TRUSTED_PROXY_CIDRS

LOG_LEVELS = ("trace", "debug", "info", "warning", "error")
TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off", "")
# authentik's code falls back to 127.0.0.1:9901 for listen.debug_py (authentik/lib/debug.py): debugpy runs any
# code it is sent, so it listens on loopback unless AUTHENTIK_LISTEN__DEBUG_PY says otherwise.
DEFAULT_DEBUG_PY = "127.0.0.1:9901"
DATA_DIR_NAME = "data"


class ConfigError(ValueError):
    """All configuration problems found, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class ListenAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
REDIS_TLS_REQS = ("none", "optional", "required")  # redis-py's ssl_cert_reqs, as authentik's redis.tls_reqs
# What one AUTHENTIK_POSTGRESQL__READ_REPLICAS__<n>__<SETTING> may set; the rest come from the primary's.
REPLICA_SETTINGS = ("HOST", "PORT", "NAME", "USER", "PASSWORD", "SSLMODE", "SSLROOTCERT", "SSLCERT", "SSLKEY",
                    "CONN_MAX_AGE", "CONN_HEALTH_CHECKS")
REPLICA_PREFIX = "AUTHENTIK_POSTGRESQL__READ_REPLICAS__"


@dataclass(frozen=True)
class PostgresConfig:
    host: str
    port: int
    user: str
    name: str
    password: str = field(repr=False)
    sslmode: str
    sslrootcert: str = ""
    sslcert: str = ""
    sslkey: str = ""
    conn_max_age: int | None = 60  # seconds a connection is kept; None: for ever (authentik's null)
    conn_health_checks: bool = True
    use_pgbouncer: bool = False  # transaction pooling: no server-side cursors, no prepared statements
    disable_server_side_cursors: bool = False
    # AUTHENTIK_POSTGRESQL__READ_REPLICAS__<n>__*: each the primary's settings with its own overrides
    read_replicas: tuple[PostgresConfig, ...] = ()


@dataclass(frozen=True)
class RedisConfig:
    host: str
    port: int
    password: str = field(repr=False)
    db: int
    username: str = ""
    tls: bool = False
    tls_reqs: str = "required"
    tls_ca_cert: str = ""
    # AUTHENTIK_REDIS__URL=redis+sentinel://…: the master is asked of the sentinels (protocols/redis_url.py)
    sentinel_url: str = field(default="", repr=False)

    @property
    def target(self) -> str:
        """Where Redis is, for people: the variables and their values (no password)."""
        if self.sentinel_url:
            from protocols import redis_url

            return f"AUTHENTIK_REDIS__URL ({redis_url.parse(self.sentinel_url).describe()})"
        return f"AUTHENTIK_REDIS__HOST:PORT={self.host}:{self.port}"

    @property
    def url(self) -> str:
        """A redis-py URL (``rediss://`` with TLS), as authentik builds it (authentik/lib/config.py redis_url);
        the ``redis+sentinel://`` URL as given with Sentinel (open it with protocols.redis_url.client)."""
        if self.sentinel_url:
            return self.sentinel_url
        auth = ""
        if self.username or self.password:
            auth = f"{quote(self.username, safe='')}:{quote(self.password, safe='')}@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        url = f"{'rediss' if self.tls else 'redis'}://{auth}{host}:{self.port}/{self.db}"
        if self.tls:
            query = {"ssl_cert_reqs": self.tls_reqs}
            if self.tls_ca_cert:
                query["ssl_ca_certs"] = self.tls_ca_cert
            url += "?" + urlencode(query)
        return url


@dataclass(frozen=True)
class EmailConfig:
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    use_tls: bool
    use_ssl: bool
    sender: str


@dataclass(frozen=True)
class Bootstrap:
    password: str = field(repr=False)
    token: str = field(repr=False)
    email: str


@dataclass(frozen=True)
class DataDir:
    """Where the data directory is and why there: which command may create it depends on that."""

    path: Path
    origin: str  # "AUTHENTIK_DATA_DIR", "checkout" or "working directory"

    @property
    def how(self) -> str:
        return {"AUTHENTIK_DATA_DIR": "from AUTHENTIK_DATA_DIR",
                "checkout": "the source checkout's; AUTHENTIK_DATA_DIR chooses another",
                }.get(self.origin, "relative to the working directory; AUTHENTIK_DATA_DIR makes it fixed")

    def describe(self) -> str:
        return f"data directory {self.path} ({self.how})"


def checkout_root() -> Path | None:
    """The source checkout this code runs from (pyproject.toml beside the ``core`` package), else None
    (an installed wheel, as in the container image)."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() and (root / "core" / "config.py").is_file() else None


def resolve_data_dir(env: Mapping[str, str]) -> DataDir:
    """AUTHENTIK_DATA_DIR (relative to the working directory); unset: ``data`` in the source checkout, so an
    ``ak`` command run from another directory finds the same database; installed without a checkout (the
    image sets AUTHENTIK_DATA_DIR=/data): ``./data`` in the working directory, as before."""
    raw = env.get("AUTHENTIK_DATA_DIR", "").strip()
    if raw:
        return DataDir(Path(raw).expanduser().absolute(), "AUTHENTIK_DATA_DIR")
    root = checkout_root()
    if root is not None:
        return DataDir(root / DATA_DIR_NAME, "checkout")
    return DataDir(Path(DATA_DIR_NAME).absolute(), "working directory")


def data_dir_problem(env: Mapping[str, str], may_create: bool) -> str | None:
    """A data directory that does not exist, for a command that must not create it, is refused when it matters:
    on SQLite it holds the database, and without AUTHENTIK_SECRET_KEY it holds the key. (Reading the
    configuration creates the directory and a new key; an ``ak`` command run from the wrong directory then
    worked on a new empty database.)"""
    where = resolve_data_dir(env)
    if may_create or where.path.is_dir():
        return None
    holds = [what for what, needed in (("the SQLite database", not env.get("AUTHENTIK_POSTGRESQL__HOST", "").strip()),
                                       ("the secret key", not env.get("AUTHENTIK_SECRET_KEY", "").strip()))
             if needed]
    if not holds:
        return None
    return (f"no data directory at {where.path} ({where.how}); it would hold "
            f"{' and '.join(holds)}: run `ak migrate` there first, or point AUTHENTIK_DATA_DIR at the existing one")


@dataclass(frozen=True)
class CoreConfig:
    data_dir: Path
    secret_key: str = field(repr=False)
    postgresql: PostgresConfig | None
    redis: RedisConfig | None
    log_level: str
    listen_http: ListenAddress
    listen_https: ListenAddress
    listen_metrics: ListenAddress
    trusted_proxy_cidrs: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    bootstrap: Bootstrap
    error_reporting: bool
    debugger: bool
    session_lifetime: int
    blueprints_dir: Path
    email: EmailConfig | None
    debug: bool
    web_threads: int = 4
    # AUTHENTIK_WEB__BASE_URL (authentik 2026.8): the Base URL system setting's value while that is empty.
    base_url: str = ""
    # The embedded outpost's RADIUS listeners (UDP), opened once a RADIUS provider is bound to it.
    listen_ldap: ListenAddress = ListenAddress("0.0.0.0", 3389)  # noqa: S104 - authentik's default
    listen_ldaps: ListenAddress = ListenAddress("0.0.0.0", 6636)  # noqa: S104 - authentik's default
    listen_radius: ListenAddress = ListenAddress("0.0.0.0", 1812)  # noqa: S104 - authentik's default
    listen_radius_accounting: ListenAddress = ListenAddress("0.0.0.0", 1813)  # noqa: S104
    allowed_hosts: tuple[str, ...] = ()  # AUTHENTIK_WEB__ALLOWED_HOSTS: more host names to answer (core/hosts.py)
    listen_debug_py: ListenAddress = ListenAddress("127.0.0.1", 9901)
    data_dir_origin: str = "AUTHENTIK_DATA_DIR"

    @property
    def database_label(self) -> str:
        return "postgresql" if self.postgresql else "sqlite"


class _Reader:
    """Reads typed values from an environment mapping, collecting every problem."""

    def __init__(self, env: Mapping[str, str]):
        self.env = env
        self.problems: list[str] = []

    def str(self, name: str, default: str = "") -> str:
        return self.env.get(name, default)

    def int(self, name: str, default: int, lo: int = 0, hi: int = 2**31) -> int:
        raw = self.env.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{name}={raw!r}: expected a whole number, e.g. {name}={default}")
            return default
        if not lo <= value <= hi:
            self.problems.append(f"{name}={raw!r}: expected a number from {lo} to {hi}")
            return default
        return value

    def max_age(self, name: str, default: int | None) -> int | None:
        """Seconds, or ``null``/``none`` for no limit (authentik's ``conn_max_age: null``)."""
        raw = self.env.get(name)
        if raw is not None and raw.strip().lower() in ("null", "none"):
            return None
        if raw is None or raw.strip() == "":
            return default
        if not raw.strip().isdigit():
            self.problems.append(f"{name}={raw!r}: expected seconds (0: a new connection per request) "
                                 f"or null (kept for ever), e.g. {name}=60")
            return default
        return self.int(name, 60, 0, 10 * 365 * 86400)

    def file(self, name: str) -> str:
        """A path that must name a readable file, when set."""
        raw = self.env.get(name, "").strip()
        if raw and not (Path(raw).is_file() and os.access(raw, os.R_OK)):
            self.problems.append(f"{name}={raw!r}: no readable file there; give the path of the PEM file "
                                 f"(mounted into the container), or unset {name}")
        return raw

    def bool(self, name: str, default: bool = False) -> bool:
        raw = self.env.get(name)
        if raw is None:
            return default
        word = raw.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        self.problems.append(f"{name}={raw!r}: expected true or false")
        return default

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        raw = self.env.get(name, default).strip().lower()
        if raw not in choices:
            self.problems.append(f"{name}={raw!r}: expected one of {', '.join(choices)}")
            return default
        return raw

    def listen(self, name: str, default: str) -> ListenAddress:
        raw = self.env.get(name, default).strip()
        host, sep, port = raw.rpartition(":")
        host = host.strip("[]")
        try:
            if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
                raise ValueError
            if host:
                ipaddress.ip_address(host) if host[0].isdigit() or ":" in host else None
            return ListenAddress(host or "0.0.0.0", int(port))  # noqa: S104 - listening on all is the default
        except ValueError:
            self.problems.append(f"{name}={raw!r}: expected host:port, e.g. {default}")
            d_host, _, d_port = default.rpartition(":")
            return ListenAddress(d_host.strip("[]"), int(d_port))

    def cidrs(self, name: str, default: tuple[str, ...]) -> tuple:
        networks, problems = trust.parse_cidrs(self.env.get(name), name, default)
        self.problems += problems
        return networks

    def base_url(self, name: str) -> str:
        from core.hosts import normalize_base_url

        raw = self.env.get(name, "")
        try:
            return normalize_base_url(raw)
        except ValueError as exc:
            self.problems.append(f"{name}={raw.strip()!r}: {exc}")
            return ""

    def hosts(self, name: str) -> tuple[str, ...]:
        from core.hosts import parse_host

        names = []
        for item in filter(str.strip, self.env.get(name, "").split(",")):
            try:
                names.append(parse_host(item))
            except ValueError as exc:
                self.problems.append(f"{name}: {exc}")
        return tuple(names)


def _redis_sentinel(r: _Reader) -> RedisConfig | None:
    """AUTHENTIK_REDIS__URL (a ``redis+sentinel://`` URL), which replaces AUTHENTIK_REDIS__HOST and the rest."""
    from protocols import redis_url

    raw = r.str("AUTHENTIK_REDIS__URL").strip()
    if not raw:
        return None
    try:
        parsed = redis_url.parse(raw)
    except ValueError as exc:
        r.problems.append(str(exc))
        return None
    both = [n for n in ("HOST", "PORT", "DB", "USERNAME", "PASSWORD", "TLS") if r.str(f"AUTHENTIK_REDIS__{n}").strip()]
    if both:
        r.problems.append(f"AUTHENTIK_REDIS__URL and AUTHENTIK_REDIS__{both[0]} are both set: the URL names the "
                          f"sentinels, the master, the database and the password; unset AUTHENTIK_REDIS__{both[0]}")
    return RedisConfig(host="", port=0, password="", db=parsed.db, sentinel_url=raw)


def _secret_key(reader: _Reader, data_dir: Path) -> str:
    """AUTHENTIK_SECRET_KEY, or one generated once and kept in the data directory."""
    key = reader.str("AUTHENTIK_SECRET_KEY").strip()
    if key:
        if len(key) < 20:
            reader.problems.append("AUTHENTIK_SECRET_KEY: too short; use at least 20 random characters "
                                   "(openssl rand -base64 60)")
        return key
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(50)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        return key
    except FileExistsError:
        return path.read_text().strip()
    except OSError as exc:
        reader.problems.append(f"AUTHENTIK_DATA_DIR={str(data_dir)!r}: cannot write the secret key there "
                               f"({exc.strerror}); set AUTHENTIK_SECRET_KEY or a writable AUTHENTIK_DATA_DIR")
        return "unusable-" + secrets.token_urlsafe(20)


def _postgres_connection(r: _Reader, prefix: str, base: PostgresConfig | None, max_age: int | None = 60) -> dict:
    """The connection settings under ``prefix`` (``AUTHENTIK_POSTGRESQL__`` or a replica's), defaulting to
    ``base``'s (the primary's, for a replica) or to authentik's defaults."""
    def given(setting: str) -> bool:
        return r.env.get(prefix + setting, "").strip() != ""  # unset or empty: the primary's
    values = {}
    if base is None or given("HOST"):
        values["host"] = r.str(prefix + "HOST").strip()
    if base is None or given("PORT"):
        values["port"] = r.int(prefix + "PORT", 5432, 1, 65535)
    if base is None or given("USER"):
        values["user"] = r.str(prefix + "USER", "authentik")
    if base is None or given("NAME"):
        values["name"] = r.str(prefix + "NAME", "authentik")
    if base is None or given("PASSWORD"):
        values["password"] = r.str(prefix + "PASSWORD")
    if base is None or given("SSLMODE"):
        values["sslmode"] = r.choice(prefix + "SSLMODE", "prefer", SSLMODES)
    for setting in ("SSLROOTCERT", "SSLCERT", "SSLKEY"):
        if base is None or given(setting):
            values[setting.lower()] = r.file(prefix + setting)
    if base is None or given("CONN_HEALTH_CHECKS"):
        values["conn_health_checks"] = r.bool(prefix + "CONN_HEALTH_CHECKS", True)
    if base is None or given("CONN_MAX_AGE"):
        values["conn_max_age"] = r.max_age(prefix + "CONN_MAX_AGE", max_age if base is None else base.conn_max_age)
    return values


def _client_cert_problem(pg: PostgresConfig, prefix: str) -> str | None:
    if bool(pg.sslcert) == bool(pg.sslkey):
        return None
    missing = "SSLKEY" if pg.sslcert else "SSLCERT"
    return (f"{prefix}{missing} is not set but {prefix}{'SSLCERT' if pg.sslcert else 'SSLKEY'} is: a client "
            f"certificate needs both the certificate and its key; set {prefix}{missing} too")


def _postgresql(r: _Reader) -> PostgresConfig | None:
    replica_vars = sorted(name for name in r.env if name.startswith(REPLICA_PREFIX))
    if not r.str("AUTHENTIK_POSTGRESQL__HOST").strip():
        if replica_vars:
            r.problems.append(f"{replica_vars[0]}: read replicas need a primary; set AUTHENTIK_POSTGRESQL__HOST "
                              "(the read replicas are used beside it, never alone)")
        return None
    use_pgbouncer = r.bool("AUTHENTIK_POSTGRESQL__USE_PGBOUNCER")
    primary = PostgresConfig(
        # PgBouncer keeps the server connections: the client ones stay open (authentik: conn_max_age null).
        **_postgres_connection(r, "AUTHENTIK_POSTGRESQL__", None, None if use_pgbouncer else 60),
        use_pgbouncer=use_pgbouncer,
        # PgBouncer's transaction pooling cannot hold a cursor between transactions (Django's docs).
        disable_server_side_cursors=r.bool("AUTHENTIK_POSTGRESQL__DISABLE_SERVER_SIDE_CURSORS", use_pgbouncer),
    )
    problems = [_client_cert_problem(primary, "AUTHENTIK_POSTGRESQL__")]
    indexes: set[str] = set()
    for name in replica_vars:
        index, _, setting = name.removeprefix(REPLICA_PREFIX).partition("__")
        if not index.isdigit() or not setting:
            problems.append(f"{name}: expected {REPLICA_PREFIX}<n>__<SETTING> with n a number (0, 1, ...), "
                            f"e.g. {REPLICA_PREFIX}0__HOST")
        elif setting not in REPLICA_SETTINGS:
            problems.append(f"{name}: a read replica has no setting {setting!r}; "
                            f"expected one of {', '.join(REPLICA_SETTINGS)}")
        else:
            indexes.add(index)
    replicas = []
    for index in sorted(indexes, key=int):
        prefix = f"{REPLICA_PREFIX}{index}__"
        replica = replace(primary, **_postgres_connection(r, prefix, primary))
        problems.append(_client_cert_problem(replica, prefix))
        replicas.append(replica)
    r.problems += [p for p in problems if p]
    return replace(primary, read_replicas=tuple(replicas))


def load(env: Mapping[str, str] | None = None) -> CoreConfig:
    """Build the configuration from ``env`` (default: the process environment).

    Raises ConfigError listing every problem at once.
    """
    env = os.environ if env is None else env
    r = _Reader(env)
    where = resolve_data_dir(env)
    data_dir = where.path

    postgresql = _postgresql(r)
    redis = _redis_sentinel(r)
    if redis is None and r.str("AUTHENTIK_REDIS__HOST").strip():
        tls = r.bool("AUTHENTIK_REDIS__TLS")
        redis = RedisConfig(
            host=r.str("AUTHENTIK_REDIS__HOST").strip(),
            port=r.int("AUTHENTIK_REDIS__PORT", 6379, 1, 65535),
            password=r.str("AUTHENTIK_REDIS__PASSWORD"),
            db=r.int("AUTHENTIK_REDIS__DB", 0, 0, 15),
            username=r.str("AUTHENTIK_REDIS__USERNAME"),
            tls=tls,
            tls_reqs=r.choice("AUTHENTIK_REDIS__TLS_REQS", "required", REDIS_TLS_REQS),
            tls_ca_cert=r.file("AUTHENTIK_REDIS__TLS_CA_CERT"),
        )
        if not tls and r.str("AUTHENTIK_REDIS__TLS_CA_CERT").strip():
            r.problems.append("AUTHENTIK_REDIS__TLS_CA_CERT is set but AUTHENTIK_REDIS__TLS is not: "
                              "set AUTHENTIK_REDIS__TLS=true to connect with TLS, or unset the CA")
    email = None
    if r.str("AUTHENTIK_EMAIL__HOST").strip():
        email = EmailConfig(
            host=r.str("AUTHENTIK_EMAIL__HOST").strip(),
            port=r.int("AUTHENTIK_EMAIL__PORT", 25, 1, 65535),
            username=r.str("AUTHENTIK_EMAIL__USERNAME"),
            password=r.str("AUTHENTIK_EMAIL__PASSWORD"),
            use_tls=r.bool("AUTHENTIK_EMAIL__USE_TLS"),
            use_ssl=r.bool("AUTHENTIK_EMAIL__USE_SSL"),
            sender=r.str("AUTHENTIK_EMAIL__FROM", "gatehouse@localhost"),
        )
    bootstrap = Bootstrap(
        password=r.str("AUTHENTIK_BOOTSTRAP_PASSWORD"),
        token=r.str("AUTHENTIK_BOOTSTRAP_TOKEN"),
        email=r.str("AUTHENTIK_BOOTSTRAP_EMAIL", "root@localhost"),
    )
    if bootstrap.token and len(bootstrap.token) < 16:
        r.problems.append("AUTHENTIK_BOOTSTRAP_TOKEN: too short; use at least 16 random characters")
    cfg = CoreConfig(
        data_dir=data_dir,
        secret_key="",
        postgresql=postgresql,
        redis=redis,
        log_level=r.choice("AUTHENTIK_LOG_LEVEL", "info", LOG_LEVELS),
        listen_http=r.listen("AUTHENTIK_LISTEN__HTTP", "0.0.0.0:9000"),
        listen_https=r.listen("AUTHENTIK_LISTEN__HTTPS", "0.0.0.0:9443"),
        listen_metrics=r.listen("AUTHENTIK_LISTEN__METRICS", "0.0.0.0:9300"),
        listen_ldap=r.listen("AUTHENTIK_LISTEN__LDAP", "0.0.0.0:3389"),
        listen_ldaps=r.listen("AUTHENTIK_LISTEN__LDAPS", "0.0.0.0:6636"),
        listen_radius=r.listen("AUTHENTIK_LISTEN__RADIUS", "0.0.0.0:1812"),
        listen_radius_accounting=r.listen("AUTHENTIK_LISTEN__RADIUS_ACCOUNTING", "0.0.0.0:1813"),
        trusted_proxy_cidrs=r.cidrs("AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS", DEFAULT_TRUSTED_PROXY_CIDRS),
        bootstrap=bootstrap,
        error_reporting=r.bool("AUTHENTIK_ERROR_REPORTING__ENABLED"),
        debugger=r.bool("AUTHENTIK_DEBUGGER"),
        session_lifetime=r.int("AUTHENTIK_SESSION_LIFETIME", 86400, 60, 10 * 365 * 86400),
        blueprints_dir=Path(r.str("AUTHENTIK_BLUEPRINTS_DIR", str(data_dir / "blueprints"))).expanduser(),
        email=email,
        debug=r.bool("AUTHENTIK_DEBUG"),
        web_threads=r.int("AUTHENTIK_WEB__THREADS", 4, 1, 64),
        base_url=r.base_url("AUTHENTIK_WEB__BASE_URL"),
        allowed_hosts=r.hosts("AUTHENTIK_WEB__ALLOWED_HOSTS"),
        listen_debug_py=r.listen("AUTHENTIK_LISTEN__DEBUG_PY", DEFAULT_DEBUG_PY),
        data_dir_origin=where.origin,
    )
    secret_key = _secret_key(r, data_dir) if not r.problems else "x" * 50
    if r.problems:
        raise ConfigError(r.problems)
    return CoreConfig(**{**cfg.__dict__, "secret_key": secret_key})
