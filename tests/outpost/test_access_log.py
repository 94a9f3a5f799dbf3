"""outpost/app.py AccessLog: the access log says exactly what aiohttp's default access logger says."""

import logging

import pytest
from aiohttp import web, web_log
from aiohttp.test_utils import make_mocked_request

from outpost.app import AccessLog

FIELDS = ("remote_address", "request_start_time", "first_request_line", "response_status", "response_size",
          "request_header")


class Keep(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@pytest.mark.parametrize("headers", [{"Host": "app.test"},
                                     {"Host": "app.test", "User-Agent": "curl/8", "Referer": "https://x/?a=b"}])
@pytest.mark.parametrize("path", ["/outpost.goauthentik.io/auth/nginx", "/x?rd=https%3A%2F%2Fapp.test%2F&y="])
def test_same_as_aiohttp(headers, path):
    logger = logging.getLogger("test.outpost.access")
    keep = Keep()
    logger.addHandler(keep)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    request = make_mocked_request("GET", path, headers=headers)
    response = web.Response(status=302, text="moved")
    try:
        for _ in range(3):  # again if a second ticked between the two calls
            keep.records.clear()
            web_log.AccessLogger(logger, web_log.AccessLogger.LOG_FORMAT).log(request, response, 0.0002)
            AccessLog(logger, "").log(request, response, 0.0002)
            theirs, ours = keep.records
            if theirs.request_start_time == ours.request_start_time:
                break
    finally:
        logger.removeHandler(keep)
    assert ours.getMessage() == theirs.getMessage()
    assert ours.levelno == theirs.levelno == logging.INFO
    assert {k: getattr(ours, k) for k in FIELDS} == {k: getattr(theirs, k) for k in FIELDS}
