"""Forward-auth target parsing and the URL rules around it (DESIGN.md §2 "Forward auth"; reference §2.4, §2.7).

Pure: standard library only, no I/O. The outpost's handlers call these functions and turn the typed errors
into protocol answers (``TargetError.status``: 500 "configuration error" when the reverse proxy did not send
the headers its flavour must send, 400 when a header is present but garbage). Nothing here ever says "yes" on
an error path: every function either returns a validated value or raises.

What each flavour reads (THREATS 2) -- and nothing else:

* Traefik, Caddy: ``X-Forwarded-Proto``, ``X-Forwarded-Host``, ``X-Forwarded-Uri``, ``X-Forwarded-Method``.
* nginx: ``X-Original-URL`` (``$scheme://$http_host$request_uri``). ``X-Original-URI`` is never read: it is
  a client-controllable header in many configs (authentik's bypass fixed in 2025.12.5).
* Envoy ext_authz: the auth request's own path after ``/outpost.goauthentik.io/auth/envoy`` and its ``Host``.

Forwarded headers count only from a peer in the trusted proxy networks (protocols/trust.py ``TrustedNetworks``;
authentik's ``AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS``, default loopback and private ranges).
"""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from urllib.parse import quote, unquote, urlencode, urlsplit

OUTPOST_PREFIX = "/outpost.goauthentik.io"
CALLBACK_PATH = f"{OUTPOST_PREFIX}/callback"
START_PATH = f"{OUTPOST_PREFIX}/start"
SIGN_OUT_PATH = f"{OUTPOST_PREFIX}/sign_out"
PING_PATH = f"{OUTPOST_PREFIX}/ping"  # health: 204 (reference §1.4)
ENVOY_PREFIX = f"{OUTPOST_PREFIX}/auth/envoy"
CALLBACK_PARAM = "X-authentik-auth-callback"
LOGOUT_PARAM = "X-authentik-logout"

MAX_URL_LENGTH = 8192  # longer targets/redirects are refused (a browser URL bar tops out near here)
DEFAULT_PORTS = {"http": 80, "https": 443}
_CONTROL = re.compile(r"[\x00-\x20\x7f]")  # control characters and whitespace (space included)
_HOST_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")  # '_' tolerated: docker service names
_METHOD = re.compile(r"^[A-Z]{1,20}$")


class TargetError(ValueError):
    """The forwarded target cannot be determined. ``status`` is the HTTP answer the handler gives."""

    status = 400


class MissingTarget(TargetError):
    """The reverse proxy did not send the headers its flavour must send: its configuration is wrong."""

    status = 500


class BadTarget(TargetError):
    """A forwarded header is present but malformed (or ambiguous)."""

    status = 400


class UntrustedPeer(TargetError):
    """Forwarded target headers from a peer outside the trusted proxy networks."""

    status = 400


class PathError(ValueError):
    """A path that cannot be normalised safely; it never matches an unauthenticated-path rule."""


class RedirectRefused(ValueError):
    """An ``rd`` / redirect target that is not allowed (THREATS 6)."""


# --- hosts ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Host:
    """A normalised host: lower-case ASCII (IDNA) hostname without trailing dot, and the port if not default."""

    hostname: str
    port: int | None = None

    @property
    def netloc(self) -> str:
        name = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return name if self.port is None else f"{name}:{self.port}"


def normalize_hostname(name: str) -> str:
    """Case-fold, strip one trailing dot, IDNA-encode (RFC 5890) and check the label syntax (RFC 1123 §2.1).

    Raises BadTarget naming the value. IPv6 literals (without brackets) are returned lower-cased."""
    if not name or _CONTROL.search(name) or len(name) > 253 + 1:
        raise BadTarget(f"invalid hostname {name!r}")
    if ":" in name:  # IPv6 literal
        if not re.fullmatch(r"[0-9a-fA-F:.]+", name):
            raise BadTarget(f"invalid IPv6 address {name!r}")
        return name.lower()
    name = name[:-1] if name.endswith(".") else name
    try:
        ascii_name = name.encode("idna").decode("ascii").lower()
    except (UnicodeError, ValueError):
        raise BadTarget(f"hostname {name!r} is not a valid internationalised domain name") from None
    labels = ascii_name.split(".")
    if not ascii_name or not all(_HOST_LABEL.match(label) for label in labels):
        raise BadTarget(f"invalid hostname {name!r}")
    return ascii_name


@functools.lru_cache(maxsize=1024)  # pure, and Host is frozen; ~5% of a forward-auth answer (bench/forward_auth)
def parse_host(value: str, scheme: str) -> Host:
    """Parse ``host[:port]`` (a Host / X-Forwarded-Host value). The scheme's default port is dropped so that
    ``app.example.com:443`` and ``app.example.com`` compare equal over https."""
    if value is None or value == "":
        raise MissingTarget("empty host")
    if _CONTROL.search(value) or any(c in value for c in "/\\@?#,"):
        raise BadTarget(f"invalid host {value!r}: only host[:port] is allowed")
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            raise BadTarget(f"invalid host {value!r}: unclosed IPv6 bracket")
        name, rest = value[1:end], value[end + 1:]
        if rest and not rest.startswith(":"):
            raise BadTarget(f"invalid host {value!r}")
        port_text = rest[1:] if rest else None
    else:
        name, sep, port_text = value.partition(":")
        port_text = port_text if sep else None
    port: int | None = None
    if port_text is not None:
        if not port_text.isdigit() or not port_text.isascii() or not 0 < int(port_text) < 65536:
            raise BadTarget(f"invalid port in host {value!r}")
        port = int(port_text)
    if port == DEFAULT_PORTS.get(scheme):
        port = None
    return Host(normalize_hostname(name), port)


def host_of_url(url: str) -> Host:
    """The normalised host of an absolute http(s) URL (e.g. a provider's ``external_host``)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.netloc or "@" in parts.netloc:
        raise BadTarget(f"{url!r} is not an absolute http(s) URL")
    return parse_host(parts.netloc, scheme)


def hosts_equal(a: str, b: str, scheme: str = "https") -> bool:
    """Case-insensitive, trailing-dot- and IDNA-insensitive comparison of two ``host[:port]`` values.
    Unparsable input compares unequal (never raises)."""
    try:
        return parse_host(a, scheme) == parse_host(b, scheme)
    except TargetError:
        return False


def in_cookie_domain(hostname: str, cookie_domain: str) -> bool:
    """True when ``hostname`` is the cookie domain or below it, on a dot boundary (``evilexample.com`` is not
    under ``example.com``; authentik's check lacks the boundary, reference §8.8). Never raises."""
    try:
        domain = normalize_hostname(cookie_domain.lstrip("."))
        host = normalize_hostname(hostname)
    except TargetError:
        return False
    return host == domain or host.endswith("." + domain)


# --- the forwarded target ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """The URL the user asked the reverse proxy for. ``path`` is the raw (still percent-encoded) path."""

    scheme: str
    host: Host
    path: str
    query: str = ""
    method: str = "GET"

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.host.netloc}"

    @property
    def path_and_query(self) -> str:
        """The origin-form request target, still percent-encoded as received."""
        return self.path + (f"?{self.query}" if self.query else "")

    @property
    def url(self) -> str:
        return f"{self.origin}{self.path_and_query}"

    def query_flag(self, name: str) -> bool:
        """``?name=true`` (value case-insensitive), as authentik's callback/logout markers (reference §2.3)."""
        return query_flag(self.query, name)


def query_flag(query: str, name: str) -> bool:
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if unquote(key) == name and unquote(value).lower() == "true":
            return True
    return False


@dataclass(frozen=True)
class AuthRequest:
    """What the handler knows about the auth request itself (used by the Envoy flavour only)."""

    path: str = ""  # the auth request's raw path (Envoy: /outpost.goauthentik.io/auth/envoy/<original>)
    query: str = ""
    method: str = "GET"
    host: str = ""  # its Host header
    scheme: str = "http"  # the scheme of the application's external host (Envoy does not forward one)


class Headers:
    """Case-insensitive single-value view over a headers mapping (aiohttp's CIMultiDict or a plain dict).

    A header sent twice is ambiguous and refused (BadTarget): two proxies disagreeing is not a target."""

    def __init__(self, headers: Mapping[str, str]):
        self._headers = headers
        self._lower: dict[str, list[str]] | None = None
        if not hasattr(headers, "getall"):
            self._lower = {}
            for key, value in headers.items():
                self._lower.setdefault(key.lower(), []).append(value)

    def get(self, name: str) -> str | None:
        if self._lower is not None:
            values = self._lower.get(name.lower(), [])
        else:
            values = list(self._headers.getall(name, []))  # type: ignore[attr-defined]
        if len(values) > 1:
            raise BadTarget(f"header {name} sent {len(values)} times")
        return values[0] if values else None


def _split_request_uri(uri: str, source: str) -> tuple[str, str]:
    """Split an origin-form request target (RFC 9112 §3.2.1) into raw path and query; drop any fragment."""
    if len(uri) > MAX_URL_LENGTH:
        raise BadTarget(f"{source} longer than {MAX_URL_LENGTH} characters")
    if _CONTROL.search(uri):
        raise BadTarget(f"{source} {uri!r} contains whitespace or control characters")
    if not uri.startswith("/"):
        raise BadTarget(f"{source} {uri!r} must be an origin-form path starting with '/'")
    uri = uri.split("#", 1)[0]
    path, _, query = uri.partition("?")
    return path, query


def _method(value: str | None, source: str) -> str:
    if value is None or value == "":
        return "GET"
    if not _METHOD.match(value.upper()):
        raise BadTarget(f"{source} {value!r} is not an HTTP method")
    return value.upper()


def _scheme(value: str, source: str) -> str:
    scheme = value.strip().lower()
    if scheme not in DEFAULT_PORTS:
        raise BadTarget(f"{source} {value!r} must be http or https")
    return scheme


def from_x_forwarded(headers: Mapping[str, str], request: AuthRequest) -> Target:
    """Traefik ``forwardAuth`` and Caddy ``forward_auth``: X-Forwarded-Proto/Host/Uri/Method only."""
    h = Headers(headers)
    proto, host, uri = h.get("X-Forwarded-Proto"), h.get("X-Forwarded-Host"), h.get("X-Forwarded-Uri")
    missing = [name for name, value in (("X-Forwarded-Proto", proto), ("X-Forwarded-Host", host),
                                        ("X-Forwarded-Uri", uri)) if not value]
    if missing:
        raise MissingTarget(f"the reverse proxy did not send {', '.join(missing)}; check its forward-auth "
                            "configuration (Traefik forwardAuth / Caddy forward_auth set them by default)")
    scheme = _scheme(proto, "X-Forwarded-Proto")
    path, query = _split_request_uri(uri, "X-Forwarded-Uri")
    return Target(scheme, parse_host(host, scheme), path, query,
                  _method(h.get("X-Forwarded-Method"), "X-Forwarded-Method"))


def from_original_url(headers: Mapping[str, str], request: AuthRequest) -> Target:
    """nginx ``auth_request``: ``proxy_set_header X-Original-URL $scheme://$http_host$request_uri``.

    ``X-Original-URI`` is deliberately not read (THREATS 2). The method comes from ``X-Original-Method`` if
    the config sets it (only used to recognise CORS preflights), else GET."""
    h = Headers(headers)
    url = h.get("X-Original-URL")
    if not url:
        raise MissingTarget("the reverse proxy did not send X-Original-URL; add "
                            "'proxy_set_header X-Original-URL $scheme://$http_host$request_uri;' to the "
                            "auth_request location")
    if len(url) > MAX_URL_LENGTH:
        raise BadTarget(f"X-Original-URL longer than {MAX_URL_LENGTH} characters")
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise BadTarget(f"X-Original-URL {url!r} is not an absolute URL")
    scheme = _scheme(scheme, "X-Original-URL scheme")
    cut = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    authority, request_uri = rest[:cut], rest[cut:]
    if request_uri.startswith("?"):
        request_uri = "/" + request_uri
    path, query = _split_request_uri(request_uri or "/", "X-Original-URL path")
    return Target(scheme, parse_host(authority, scheme), path, query,
                  _method(h.get("X-Original-Method"), "X-Original-Method"))


def from_envoy(headers: Mapping[str, str], request: AuthRequest) -> Target:
    """Envoy ``ext_authz`` (HTTP service, ``path_prefix: /outpost.goauthentik.io/auth/envoy``): the original
    path is the auth request's path after the prefix, the original host its ``Host``."""
    if not request.path.startswith(ENVOY_PREFIX):
        raise MissingTarget(f"envoy auth request path {request.path!r} does not start with {ENVOY_PREFIX}")
    suffix = request.path[len(ENVOY_PREFIX):] or "/"
    if request.query:
        suffix = f"{suffix}?{request.query}"
    if not request.host:
        raise MissingTarget("envoy auth request without a Host header")
    path, query = _split_request_uri(suffix, "envoy original path")
    scheme = _scheme(request.scheme, "envoy scheme")
    return Target(scheme, parse_host(request.host, scheme), path, query, _method(request.method, "method"))


def from_request_target(scheme: str, host: Host, raw_target: str, method: str) -> Target:
    """Proxy mode: the application's own request, whose raw request-target (RFC 9112 §3.2, origin-form only) is
    judged and then forwarded to the upstream byte for byte (``Target.path_and_query``). Raises BadTarget for
    another form (absolute, authority, asterisk), non-ASCII, whitespace or control characters. The method is
    the one the HTTP server parsed (WebDAV's ``PROPFIND``, ``MKCOL``...) and goes upstream as is."""
    if not raw_target.isascii():
        raise BadTarget(f"request target {raw_target!r} is not ASCII; percent-encode it")
    path, query = _split_request_uri(raw_target, "request target")
    return Target(scheme, host, path, query, method)


Extractor = Callable[[Mapping[str, str], AuthRequest], Target]
FLAVOURS: dict[str, Extractor] = {
    "traefik": from_x_forwarded,
    "caddy": from_x_forwarded,
    "nginx": from_original_url,
    "envoy": from_envoy,
}


READS_FORWARDED_HEADERS = frozenset({"traefik", "caddy", "nginx"})


def extract_target(flavour: str, headers: Mapping[str, str], request: AuthRequest | None = None, *,
                   peer_trusted: bool = True) -> Target:
    """The forwarded target for ``flavour`` (a key of FLAVOURS). Raises MissingTarget / BadTarget, and
    UntrustedPeer when a flavour that reads forwarded headers is asked by a peer outside the trusted proxy
    networks (THREATS 2: those headers would be the client's own)."""
    try:
        extractor = FLAVOURS[flavour]
    except KeyError:
        raise BadTarget(f"unknown forward-auth flavour {flavour!r}; one of {sorted(FLAVOURS)}") from None
    if not peer_trusted and flavour in READS_FORWARDED_HEADERS:
        raise UntrustedPeer(f"{flavour} forward auth asked by a peer outside the trusted proxy networks; add the "
                            "reverse proxy's network to AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS")
    return extractor(headers, request or AuthRequest())


def is_outpost_path(path: str) -> bool:
    """Does a (raw) path address the outpost's own endpoints? Checked on the normalised form too, so that
    ``/x/../outpost.goauthentik.io/`` and ``/%6futpost.goauthentik.io`` count."""
    candidates = [path]
    try:
        candidates.append(normalize_path(path))
    except PathError:
        pass
    return any(p == OUTPOST_PREFIX or p.startswith(OUTPOST_PREFIX + "/") for p in candidates)


# --- path normalisation and unauthenticated paths (THREATS 4) -------------------------------------------

def _decoded(raw_path: str) -> str:
    """The path of a request target (query and fragment dropped) percent-decoded exactly once. Raises PathError
    on anything a server could decode differently from us: NUL or control characters, backslashes (raw or
    encoded), a percent-encoded ``%`` (double encoding), invalid UTF-8, or a path that is not absolute."""
    path = raw_path.split("#", 1)[0].split("?", 1)[0]
    if not path.startswith("/"):
        raise PathError(f"path {raw_path!r} is not absolute")
    if "\\" in path or _CONTROL.search(path):
        raise PathError(f"path {raw_path!r} contains a backslash or control character")
    try:
        decoded = unquote(path, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise PathError(f"path {raw_path!r} is not valid UTF-8 once decoded") from None
    if "\\" in decoded or _CONTROL.search(decoded) or "%" in decoded and re.search(r"%[0-9a-fA-F]{2}", decoded):
        raise PathError(f"path {raw_path!r} decodes to a backslash, control character or another escape")
    return decoded


def normalize_path(raw_path: str) -> str:
    """Where a path leads once every server has resolved it: decoded once (``_decoded``), ``.``/``..`` segments
    and repeated slashes resolved (RFC 3986 §5.2.4). Used to recognise the outpost's own paths in any spelling
    (``is_outpost_path``); unauthenticated-path rules use the stricter ``judged_path``."""
    decoded = _decoded(raw_path)
    if decoded.startswith("//"):
        decoded = "/" + decoded.lstrip("/")
    resolved = posixpath.normpath(decoded)
    if resolved.startswith("//"):  # normpath keeps a leading '//' (POSIX); we do not
        resolved = "/" + resolved.lstrip("/")
    if decoded.endswith("/") and resolved != "/":
        resolved += "/"
    return resolved


_SEPARATOR_ESCAPE = re.compile(r"%(2[fF]|5[cC])")


def judged_path(raw_path: str) -> str:
    """The path an unauthenticated-path rule is matched against (THREATS 4; issue 8 item 6): the raw path
    decoded once, and only when that decoding is the one every server makes of it. The upstream receives the
    raw path (the reverse proxies pass ``$request_uri`` on; proxy mode forwards it byte for byte), so a rule may
    only let through a path that cannot lead anywhere else. Raises PathError -- the path then needs a login
    like any other request -- for:

    * an encoded ``/`` or ``\\`` (``%2F``, ``%5C``) or a raw ``\\``: a separator to one server, part of a segment to
      another (``/admin/..%2Fpublic/x`` is ``/public/x`` decoded, and ``/admin/...`` to a router on the raw path);
    * a ``.`` or ``..`` segment, raw or encoded: resolved by some servers and proxies, passed on by others
      (browsers never send them);
    * ``;``, raw or encoded: path parameters that Java servers strip (``/public/..;/admin/x`` is ``/admin/x``
      to Tomcat);
    * an empty segment (``//``): collapsed by some servers, kept by others;
    * and everything ``_decoded`` refuses (control characters, double encoding, invalid UTF-8).

    authentik matches its skip regexes against the decoded path without these checks."""
    path = raw_path.split("#", 1)[0].split("?", 1)[0]
    if _SEPARATOR_ESCAPE.search(path):
        raise PathError(f"path {raw_path!r} contains an encoded slash or backslash")
    decoded = _decoded(raw_path)
    if ";" in decoded:
        raise PathError(f"path {raw_path!r} carries ';' path parameters")
    segments = decoded.split("/")[1:]
    if any(segment in (".", "..") for segment in segments):
        raise PathError(f"path {raw_path!r} has a dot segment")
    if "" in segments[:-1]:
        raise PathError(f"path {raw_path!r} has an empty segment ('//')")
    return decoded


@dataclass(frozen=True)
class SkipRules:
    """``skip_path_regex``: one Python regex per line, each matched with ``re.fullmatch`` (anchored).

    ``errors`` lists the lines that did not compile (line number, text, reason); they never match, and the
    outpost reports them instead of silently ignoring them."""

    patterns: tuple[re.Pattern[str], ...] = ()
    errors: tuple[str, ...] = field(default=())

    @classmethod
    def compile(cls, text: str | None) -> SkipRules:
        patterns, errors = [], []
        for number, line in enumerate((text or "").splitlines(), start=1):
            line = line.strip()
            if not line:
                continue
            try:
                patterns.append(re.compile(line))
            except re.error as exc:
                errors.append(f"skip_path_regex line {number} {line!r}: {exc}")
        return cls(tuple(patterns), tuple(errors))

    def match_target(self, target: Target, *, full_url: bool) -> bool:
        """Does ``target`` match? Against ``judged_path``, or in forward_domain mode (``full_url``) against
        ``scheme://host/judged-path`` as authentik does. A path judged_path refuses never matches."""
        if not self.patterns:
            return False
        try:
            path = judged_path(target.path)
        except PathError:
            return False
        subject = f"{target.origin}{path}" if full_url else path
        return any(p.fullmatch(subject) for p in self.patterns)


# --- redirects (THREATS 6) -----------------------------------------------------------------------------

def validate_redirect(rd: str, external_host: str, *, cookie_domain: str = "", domain_mode: bool = False) -> str:
    """Return the absolute URL ``rd`` designates if the user may be sent there, else raise RedirectRefused.

    ``rd`` may be a path (``/x?y``, completed with the external host) or an absolute http(s) URL whose host is
    the external host (host and port), or in domain mode the cookie domain or a host below it (dot boundary).
    Refused: anything unparsable, other schemes (``javascript:``, ``data:``), userinfo, whitespace or control
    characters, backslashes, protocol-relative ``//evil`` and ``/\\evil``, over-long values."""
    if not isinstance(rd, str) or not rd:
        raise RedirectRefused("empty redirect")
    if len(rd) > MAX_URL_LENGTH:
        raise RedirectRefused(f"redirect longer than {MAX_URL_LENGTH} characters")
    if _CONTROL.search(rd) or "\\" in rd:
        raise RedirectRefused(f"redirect {rd!r} contains whitespace, a control character or a backslash")
    external = urlsplit(external_host.rstrip("/"))
    if rd.startswith("/"):
        if rd.startswith("//"):
            raise RedirectRefused(f"protocol-relative redirect {rd!r}")
        return f"{external.scheme}://{external.netloc}{rd}"
    try:
        parts = urlsplit(rd)
        port = parts.port  # raises ValueError on a bad port
    except ValueError:
        raise RedirectRefused(f"redirect {rd!r} is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise RedirectRefused(f"redirect {rd!r} is not http(s)")
    if not parts.netloc or "@" in parts.netloc or parts.username is not None:
        raise RedirectRefused(f"redirect {rd!r} has no host or carries userinfo")
    try:
        host = parse_host(parts.netloc, scheme)
        ext_host = host_of_url(external_host)
    except TargetError:
        raise RedirectRefused(f"redirect {rd!r} has an invalid host") from None
    del port
    if host == ext_host:
        return rd
    if domain_mode and cookie_domain and in_cookie_domain(host.hostname, cookie_domain):
        return rd
    raise RedirectRefused(f"redirect host {parts.netloc!r} is not {ext_host.netloc!r}"
                          + (f" nor under {cookie_domain!r}" if domain_mode else ""))


def join_external(external_host: str, escaped_path: str) -> str:
    """Go's ``url.JoinPath(external_host, escapedPath)``: the path is appended after any sub-path of the
    external host; escapes in it are kept verbatim (``%2F`` stays ``%2F``)."""
    base = external_host.rstrip("/")
    if not escaped_path or escaped_path == "/":
        return base + ("/" if escaped_path == "/" and urlsplit(base).path else "")
    return base + "/" + escaped_path.lstrip("/")


def start_location(external_host: str, redirect: str) -> str:
    """``<external_host>/outpost.goauthentik.io/start?rd=<redirect, query-encoded>`` (reference §2.4)."""
    return f"{external_host.rstrip('/')}{START_PATH}?{urlencode({'rd': redirect}, quote_via=quote)}"


def redirect_for_start(external_host: str, target: Target | None, escaped_path: str, *,
                       domain_mode: bool = False, cookie_domain: str = "") -> str:
    """authentik's ``redirectToStart`` redirect value: external host + the request's escaped path (no query);
    in domain mode the bare external host unless the request host is in the cookie domain."""
    if domain_mode and (target is None or not cookie_domain
                        or not in_cookie_domain(target.host.hostname, cookie_domain)):
        return external_host.rstrip("/")
    return join_external(external_host, escaped_path)


# --- request classification (THREATS 10) ---------------------------------------------------------------

class RequestClass(Enum):
    NAVIGATION = "navigation"  # a browser page load: may be redirected to the login
    API = "api"  # XHR, fetch, JSON clients, CORS preflight: a redirect is useless, answer 401


def classify(method: str, headers: Mapping[str, str]) -> RequestClass:
    """API when the client cannot follow a login redirect: an ``OPTIONS`` preflight
    (``Access-Control-Request-Method``, Fetch standard §3.2.2), ``X-Requested-With``, ``Sec-Fetch-Mode: cors``,
    or an ``Accept`` naming JSON but not ``text/html``. Duplicated headers count as API (fail towards 401)."""
    try:
        h = Headers(headers)
        if method.upper() == "OPTIONS" and h.get("Access-Control-Request-Method"):
            return RequestClass.API
        if h.get("X-Requested-With"):
            return RequestClass.API
        if (h.get("Sec-Fetch-Mode") or "").strip().lower() == "cors":
            return RequestClass.API
        accept = (h.get("Accept") or "").lower()
    except BadTarget:
        return RequestClass.API
    types = {part.split(";", 1)[0].strip() for part in accept.split(",")}
    wants_json = any(t == "application/json" or t.endswith("+json") for t in types)
    if wants_json and "text/html" not in types:
        return RequestClass.API
    return RequestClass.NAVIGATION


FORWARDED_TARGET_HEADERS = ("x-forwarded-proto", "x-forwarded-host", "x-forwarded-uri", "x-forwarded-method",
                            "x-original-url", "x-original-method", "forwarded")


def has_forwarded_target(headers: Mapping[str, str]) -> bool:
    """Does the request carry a header that names a forwarded target?"""
    return any(name.lower() in FORWARDED_TARGET_HEADERS for name in headers.keys())

