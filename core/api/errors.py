"""API error bodies: ``{field: [message]}`` for validation errors (so a client knows which field to
fix), ``{"detail": message}`` for everything else, as authentik's API answers.

Database refusals (unique or foreign-key violations that slipped past the serializers, protected
deletes, values the column cannot hold) become 400s that say what blocked the change instead of a
bare 500. NUL characters and over-deep JSON never get this far (core/input_guard.py).
"""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError
from django.db.models import ProtectedError, RestrictedError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

LOGGER = logging.getLogger("gatehouse.api")


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, (ProtectedError, RestrictedError)):
        blockers = sorted({str(obj) for obj in exc.args[1]})[:10] if len(exc.args) > 1 else []
        return Response({"detail": f"cannot delete: still used by {', '.join(blockers) or 'other objects'}; "
                                   "remove those references first"}, status=status.HTTP_400_BAD_REQUEST)
    elif isinstance(exc, DataError):
        LOGGER.info("data error in API request", extra={"error": str(exc)})
        return Response({"detail": "a value does not fit where it is stored (too long, out of range, or a "
                                   "character the database cannot hold); shorten or correct it"},
                        status=status.HTTP_400_BAD_REQUEST)
    elif isinstance(exc, IntegrityError):
        LOGGER.info("integrity error in API request", extra={"error": str(exc)})
        return Response({"detail": "the change conflicts with existing data (a unique value already in use, "
                                   "or a reference to an object that does not exist)"},
                        status=status.HTTP_400_BAD_REQUEST)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # unexpected: Django turns it into a 500, never a 2xx
    if isinstance(exc, exceptions.ValidationError) and isinstance(response.data, list):
        response.data = {"non_field_errors": response.data}
    return response
