"""A requests transport adapter onto the Django test client, so real HTTP clients (authlib's
OAuth2Session, which is built on requests) talk to the core in-process, through the real URL
routing, middleware and views."""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict


class DjangoTestAdapter(BaseAdapter):
    def __init__(self, client):
        super().__init__()
        self.client = client

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        parts = urlsplit(request.url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in ("content-type", "content-length", "host")}
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        answer = self.client.generic(request.method, path, data=body,
                                     content_type=request.headers.get("Content-Type", ""),
                                     headers=headers, secure=parts.scheme == "https")
        response = requests.Response()
        response.status_code = answer.status_code
        response.headers = CaseInsensitiveDict(dict(answer.items()))
        response._content = answer.content
        response.url = request.url
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self):
        pass


def mount(session: requests.Session, client, base: str = "http://testserver/") -> requests.Session:
    session.mount(base, DjangoTestAdapter(client))
    return session
