"""A browser-like HTTP client for the e2e journeys: no DNS, cookies per host, redirects followed by hand.

The proxies route on ``Host: app.test:<port>`` but listen on 127.0.0.1. ``Browser`` sends requests for a
mapped host name (``app.test`` and its subdomains by default) to 127.0.0.1 while keeping the URL, so the
``Host`` header and the cookie jar see ``app.test:<port>`` exactly as a browser would (cookies are per host
name, not per port, as in browsers). Every hop is recorded (``Browser.hops``) for failure messages.

    browser = Browser()
    final = browser.follow("http://app.test:8080/private")   # 302 ... until a non-redirect
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

TIMEOUT = 15.0
MAX_HOPS = 20
REDIRECTS = (301, 302, 303, 307, 308)


class MappedTransport(httpx.BaseTransport):
    """Connect to ``address`` for host names in (or under) ``names``; the request keeps its URL and Host."""

    def __init__(self, names: tuple[str, ...], address: str = "127.0.0.1"):
        self.names = tuple(n.lower() for n in names)
        self.address = address
        self.inner = httpx.HTTPTransport()

    def mapped(self, host: str) -> bool:
        host = host.lower()
        return any(host == n or host.endswith("." + n) for n in self.names)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not self.mapped(request.url.host):
            return self.inner.handle_request(request)
        # request.headers already carries Host: <name>:<port>; only the connection target changes.
        moved = httpx.Request(request.method, request.url.copy_with(host=self.address), headers=request.headers,
                              stream=request.stream, extensions=request.extensions)
        return self.inner.handle_request(moved)

    def close(self) -> None:
        self.inner.close()


@dataclass(frozen=True)
class Hop:
    method: str
    url: str
    status: int
    location: str | None

    def __str__(self) -> str:
        arrow = f" -> {self.location}" if self.location else ""
        return f"{self.method} {self.url} = {self.status}{arrow}"


class Browser:
    """``get``/``post``/``request`` never follow redirects; ``follow`` does, like a browser (303/302 after a
    POST become GET). ``hops`` lists every request made, ``trail()`` formats the recent ones."""

    def __init__(self, names: tuple[str, ...] = ("app.test",), timeout: float = TIMEOUT):
        self.transport = MappedTransport(names)
        self.client = httpx.Client(transport=self.transport, timeout=timeout, follow_redirects=False)
        self.hops: list[Hop] = []

    @property
    def cookies(self) -> httpx.Cookies:
        return self.client.cookies

    def cookie(self, name: str, host: str | None = None) -> str | None:
        """The value of cookie ``name`` (for ``host`` if given: a host name without port)."""
        for item in self.client.cookies.jar:
            if item.name == name and (host is None or item.domain.lstrip(".") == host):
                return item.value
        return None

    def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        response = self.client.request(method, url, **kwargs)
        self.hops.append(Hop(method, url, response.status_code, response.headers.get("location")))
        return response

    def get(self, url: str, **kwargs) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def follow(self, url: str, *, method: str = "GET", max_hops: int = MAX_HOPS, **kwargs) -> httpx.Response:
        """Request ``url`` and follow redirects until a non-redirect answer. Extra headers (``headers=``) go
        with every hop, as a browser's Accept would; a 301/302/303 turns a POST into a GET."""
        return self.follow_from(self.request(method, url, **kwargs), max_hops=max_hops,
                                headers=kwargs.get("headers"))

    def follow_from(self, response: httpx.Response, *, max_hops: int = MAX_HOPS,
                    headers: dict | None = None) -> httpx.Response:
        """Follow the redirects starting at ``response`` (already received)."""
        method = response.request.method
        for _ in range(max_hops):
            if response.status_code not in REDIRECTS:
                return response
            target = urljoin(str(response.request.url), response.headers["location"])
            if response.status_code in (301, 302, 303) and method != "HEAD":
                method = "GET"
            response = self.request(method, target, headers=headers)
        raise AssertionError(f"more than {max_hops} redirects:\n{self.trail()}")

    def trail(self, last: int = 20) -> str:
        return "\n".join(f"  {hop}" for hop in self.hops[-last:])

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def path_of(url: str) -> str:
    return urlsplit(url).path
