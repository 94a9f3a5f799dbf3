"""Expression policies: an administrator's Python, run as the body of a function with few names.

authentik runs the expression as a function body (``return`` allowed, the last value is the
result) with ``request``, ``ak_is_group_member``, ``ak_message``, ``regex_match``, ``ip_address``,
``ip_network`` and a few more in scope. authentik gives the full builtins; Gatehouse restricts:
- builtins: a fixed safe set (no ``__import__``, ``open``, ``eval``, ``exec``, ``compile``,
  ``getattr``, ``type``, ``globals``, ``vars``, ...);
- no name or attribute that starts with an underscore (that is how sandboxes are escaped:
  ``().__class__.__base__.__subclasses__()``), and no ``str.format`` (its fields reach attributes
  by name), refused when compiling;
- a deadline per evaluation (the binding's ``timeout``), enforced by a line tracer on the
  expression's own frames, so ``while True: pass`` ends with an error instead of hanging a worker.
Any exception becomes a failing result carrying the error; the engine then applies the binding's
``failure_result`` and records a ``policy_exception`` event.
"""

from __future__ import annotations

import ast
import functools
import ipaddress
import logging
import re
import sys
import time
from collections.abc import Callable

from core.policies.types import PolicyRequest, PolicyResult

LOGGER = logging.getLogger("gatehouse.policies.expression")
FILENAME = "<expression policy>"

SAFE_BUILTINS = {
    name: __builtins__[name] if isinstance(__builtins__, dict) else getattr(__builtins__, name)
    for name in (
        "abs", "all", "any", "bool", "chr", "dict", "divmod", "enumerate", "filter", "float", "frozenset",
        "hash", "int", "isinstance", "issubclass", "iter", "len", "list", "map", "max", "min", "next", "ord",
        "pow", "range", "repr", "reversed", "round", "set", "sorted", "str", "sum", "tuple", "zip",
        "True", "False", "None", "Exception", "ValueError", "KeyError", "TypeError", "IndexError",
        "AttributeError", "print",
    )
}


class ExpressionError(ValueError):
    """The expression cannot be compiled or used; the message names the line and the fix."""


class ExpressionTimeout(Exception):
    pass


class _Checker(ast.NodeVisitor):
    def _refuse(self, node, what: str):
        raise ExpressionError(f"line {getattr(node, 'lineno', 1) - 1}: {what} is not allowed in an expression "
                              "policy (names and attributes starting with '_', import, global)")

    def visit_Attribute(self, node):
        # str.format / format_map walk attributes by name ("{0.__init__.__globals__}"): f-strings instead.
        if node.attr.startswith("_") or node.attr in ("format", "format_map"):
            self._refuse(node, f"attribute {node.attr!r}")
        self.generic_visit(node)

    def visit_Name(self, node):
        if node.id.startswith("_"):
            self._refuse(node, f"name {node.id!r}")
        self.generic_visit(node)

    def visit_Import(self, node):
        self._refuse(node, "import")

    visit_ImportFrom = visit_Import

    def visit_Global(self, node):
        self._refuse(node, "global")

    visit_Nonlocal = visit_Global


@functools.lru_cache(maxsize=256)
def compile_expression(source: str) -> Callable:
    """Compile ``source`` as the body of ``def expression(...)``; raise ExpressionError if it is unusable.

    Cached by source (errors are not): parsing and checking dominated evaluating one policy for many users
    (the proxy outpost's access lists). The function is pure: it sees only its arguments and SAFE_BUILTINS.
    """
    body = "\n".join(f"    {line}" for line in (source or "").splitlines()) or "    return False"
    text = "def expression(request, ak_is_group_member, ak_message, regex_match, regex_replace, ip_address, " \
           "ip_network, ak_client_ip, ak_logger, ak_user_has_authenticator, list_flatten, ak_user_by, " \
           "context):\n" + body + "\n"
    try:
        tree = ast.parse(text, FILENAME)
    except SyntaxError as exc:
        raise ExpressionError(f"expression does not compile: {exc.msg} at line {(exc.lineno or 2) - 1}") from None
    _Checker().visit(tree)
    namespace: dict = {"__builtins__": SAFE_BUILTINS}
    exec(compile(tree, FILENAME, "exec"), namespace)  # noqa: S102 - restricted names, checked tree
    return namespace["expression"]


def _tracer(deadline: float):
    def local(frame, event, arg):
        if event == "line" and time.monotonic() > deadline:
            raise ExpressionTimeout("expression policy exceeded its timeout")
        return local

    def global_(frame, event, arg):
        return local if frame.f_code.co_filename == FILENAME else None

    return global_


def _client_ip(http):
    try:
        return ipaddress.ip_address(http.client_ip) if http and http.client_ip else None
    except ValueError:
        return None


def evaluate(source: str, request: PolicyRequest, timeout: float = 30) -> PolicyResult:
    """Run the expression; truthy -> passing. Raises on any error (the engine applies failure_result)."""
    messages: list[str] = []
    function = compile_expression(source)

    def ak_is_group_member(user, **group_filter) -> bool:
        if user is None or not getattr(user, "pk", None):
            return False
        return any(all(str(getattr(g, k, None)) == str(v) for k, v in group_filter.items())
                   for g in user.all_groups())

    def ak_user_has_authenticator(user, device_type: str | None = None) -> bool:
        from core.flows.stages.devices import user_devices

        return any(device_type in (None, d.device_class) for d in user_devices(user))

    def list_flatten(value):
        if isinstance(value, (list, tuple)):
            return value[0] if len(value) == 1 else (None if not value else value)
        return value

    def ak_user_by(**filters):
        from core.accounts.models import User

        if any("password" in key for key in filters):
            raise ExpressionError("ak_user_by cannot filter on passwords")
        return User.objects.filter(**filters).first()

    http = request.http_request
    args = dict(
        ak_user_by=ak_user_by, context=request.context,
        request=request, ak_is_group_member=ak_is_group_member, ak_message=messages.append,
        regex_match=lambda value, regex: re.search(regex, str(value)) is not None,
        regex_replace=lambda value, regex, repl: re.sub(regex, repl, str(value)),
        ip_address=ipaddress.ip_address, ip_network=ipaddress.ip_network,
        ak_client_ip=_client_ip(http),
        ak_logger=LOGGER, ak_user_has_authenticator=ak_user_has_authenticator, list_flatten=list_flatten,
    )
    previous = sys.gettrace()
    sys.settrace(_tracer(time.monotonic() + timeout))
    try:
        result = function(**args)
    finally:
        sys.settrace(previous)
    if isinstance(result, PolicyResult):
        return PolicyResult(result.passing, (*messages, *result.messages))
    return PolicyResult(bool(result), tuple(str(m) for m in messages))
