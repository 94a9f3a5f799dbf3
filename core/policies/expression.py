"""Expression policies: an administrator's Python, run as the body of a function with authentik's names.

authentik runs the expression as a function body (``return`` allowed, the last value is the result) with
``request``, ``ak_is_group_member``, ``ak_message``, ``regex_match``, ``ip_address``, ``ip_network`` and a
few more in scope, and gives it all of Python. This is not a sandbox either: through the objects it is
handed an expression reaches the ORM and so any SQL the core's database role may run (with a PostgreSQL
superuser role, ``COPY ... TO PROGRAM`` runs commands on the database host). Only superusers can write
expressions (API, admin) and only operators can apply blueprints, as in authentik. What Gatehouse refuses
when compiling are guard rails against mistakes, not a security boundary:
- builtins: a fixed set (no ``__import__``, ``open``, ``eval``, ``exec``, ``compile``, ``getattr``,
  ``type``, ``globals``, ``vars``, ...);
- no name or attribute that starts with an underscore, and no ``str.format`` (its fields reach attributes
  by name); no ``import``, ``global``.

The binding's timeout is real. An expression that is provably short (straight-line code: no loop, no
comprehension other than one pass without calls over existing data such as the default ``profile`` scope
mapping's ``[group.name for group in request.user.all_groups()]``, no lambda, no repetition operator, only the
calls in SHORT_CALLS / SHORT_METHODS) runs in the calling thread, as cheap as before. Any other runs in a forked evaluator process that is killed at the
timeout, its database queries run on the caller's connection and are cancelled with it
(core/policies/isolation.py), so ``while True: pass``, ``sum(range(10**15))``, a backtracking regex and a
slow query all end at the timeout. Any exception (the timeout included) fails the evaluation; the engine
then applies the binding's ``failure_result`` and records a ``policy_exception`` event naming the policy.
"""

from __future__ import annotations

import ast
import functools
import ipaddress
import logging
import re
from collections.abc import Callable

from core.policies import isolation
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
    """The expression ran past its binding's timeout and was stopped."""


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


# Calls a short expression may make: each does a bounded amount of work (a query or two at most).
SHORT_CALLS = frozenset({
    "ak_is_group_member", "ak_message", "ak_user_has_authenticator", "list_flatten", "ip_address", "ip_network",
    "bool", "str", "int", "float", "len", "isinstance", "abs", "min", "max", "list", "tuple", "dict", "set",
    "sorted", "any", "all",
})
SHORT_METHODS = frozenset({
    "get", "keys", "values", "items", "lower", "upper", "casefold", "title", "capitalize", "strip", "lstrip",
    "rstrip", "startswith", "endswith", "split", "rsplit", "join", "removeprefix", "removesuffix",
    "all_groups", "group_attributes", "debug", "info", "warning", "error",
})
SHORT_OPERATORS = (ast.Add, ast.Sub, ast.Div, ast.FloorDiv, ast.BitAnd, ast.BitOr, ast.BitXor, ast.RShift)
MAX_SHORT_OPERATIONS = 8  # `s = s + s` eight times is 256 times the data, not 2**40
COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
LONG_NODES = (ast.While, ast.For, ast.AsyncFor, ast.Lambda, ast.AsyncFunctionDef, ast.ClassDef, ast.Starred, ast.Await, ast.Yield, ast.YieldFrom)


class _Shape(ast.NodeVisitor):
    """Is the expression provably short? Straight-line code whose every call is one of a fixed set (or a
    function it defines and calls only from its top level, as the scope-mapping wrapper does), with no
    repetition operator (``*``, ``**``, ``%``, ``<<``) and no name of that set rebound."""

    def __init__(self):
        self.short, self.depth, self.operations, self.local = True, -1, 0, set()
        self.comprehending = False

    def generic_visit(self, node):
        if isinstance(node, LONG_NODES):
            self.short = False
        if self.short:
            super().generic_visit(node)

    def _comprehension(self, node):
        """One pass over data that already exists: a single ``for``, not inside another comprehension, over a name,
        an attribute or an allowed call (``request.user.all_groups()``, ``x.items()``), with no call in its element or
        conditions (so nothing per element but reading it). Its work is linear in what a query or the input returned,
        like ``sorted()`` or ``list()`` of it; nested or multiple ``for`` clauses (quadratic) are not short."""
        if self.comprehending or len(node.generators) != 1 or node.generators[0].is_async:
            self.short = False
            return
        loop = node.generators[0]
        if not isinstance(loop.iter, ast.Name | ast.Attribute | ast.Call):
            self.short = False
            return
        parts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        if any(isinstance(n, ast.Call | ast.NamedExpr) for part in [*parts, loop.target, *loop.ifs]
               for n in ast.walk(part)):
            self.short = False
            return
        self.visit(loop.iter)  # the iterable is judged like any other expression (allowed calls only)
        self.comprehending = True
        for part in [*parts, loop.target, *loop.ifs]:
            self.visit(part)
        self.comprehending = False

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _comprehension

    def visit_FunctionDef(self, node):
        self.depth += 1
        if self.depth > 1 or node.decorator_list or node.args.defaults or node.args.kw_defaults:
            self.short = False
        if self.depth == 1:
            names = {a.arg for a in (*node.args.args, *node.args.kwonlyargs, node.args.vararg, node.args.kwarg) if a}
            if names & (SHORT_CALLS | self.local):
                self.short = False
            self.local.add(node.name)
        self.generic_visit(node)
        self.depth -= 1

    def visit_Call(self, node):
        func = node.func
        if isinstance(func, ast.Name):
            allowed = func.id in SHORT_CALLS or (func.id in self.local and self.depth == 0)
        else:
            allowed = isinstance(func, ast.Attribute) and func.attr in SHORT_METHODS
        if not allowed:
            self.short = False
        self.generic_visit(node)

    def _operation(self, op):
        self.operations += 1
        if not isinstance(op, SHORT_OPERATORS) or self.operations > MAX_SHORT_OPERATIONS:
            self.short = False

    def visit_BinOp(self, node):
        self._operation(node.op)
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        self._operation(node.op)
        self.generic_visit(node)

    def visit_FormattedValue(self, node):
        if node.format_spec is not None:  # f"{x:>999999999}"
            self.short = False
        self.generic_visit(node)

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Store | ast.Del) and node.id in SHORT_CALLS | self.local:
            self.short = False

    def visit_Attribute(self, node):
        if isinstance(node.ctx, ast.Store | ast.Del) and node.attr in SHORT_METHODS:
            self.short = False
        self.generic_visit(node)

    def visit_ExceptHandler(self, node):
        if node.name in SHORT_CALLS | self.local:
            self.short = False
        self.generic_visit(node)


@functools.lru_cache(maxsize=256)
def runs_in_process(source: str) -> bool:
    """True when ``source`` is provably short and runs in the calling thread; else it runs in an evaluator
    process that is killed at the timeout. Cached by source, like compile_expression."""
    shape = _Shape()
    try:
        shape.visit(ast.parse(_function_text(source), FILENAME))
    except SyntaxError:
        return False
    return shape.short


def _function_text(source: str) -> str:
    body = "\n".join(f"    {line}" for line in (source or "").splitlines()) or "    return False"
    return "def expression(request, ak_is_group_member, ak_message, regex_match, regex_replace, ip_address, " \
           "ip_network, ak_client_ip, ak_logger, ak_user_has_authenticator, list_flatten, ak_user_by, " \
           "context):\n" + body + "\n"


@functools.lru_cache(maxsize=256)
def compile_expression(source: str) -> Callable:
    """Compile ``source`` as the body of ``def expression(...)``; raise ExpressionError if it is unusable.

    Cached by source (errors are not): parsing and checking dominated evaluating one policy for many users
    (the proxy outpost's access lists). The function is pure: it sees only its arguments and SAFE_BUILTINS.
    """
    try:
        tree = ast.parse(_function_text(source), FILENAME)
    except SyntaxError as exc:
        raise ExpressionError(f"expression does not compile: {exc.msg} at line {(exc.lineno or 2) - 1}") from None
    _Checker().visit(tree)
    namespace: dict = {"__builtins__": SAFE_BUILTINS}
    exec(compile(tree, FILENAME, "exec"), namespace)  # noqa: S102 - restricted names, checked tree
    return namespace["expression"]


def _client_ip(http):
    try:
        return ipaddress.ip_address(http.client_ip) if http and http.client_ip else None
    except ValueError:
        return None


def evaluate(source: str, request: PolicyRequest, timeout: float = 30) -> PolicyResult:
    """Run the expression; truthy -> passing. Raises on any error, ExpressionTimeout when it ran past
    ``timeout`` seconds and was stopped (the engine applies failure_result)."""
    compile_expression(source)  # a compile error is reported here, never in a process
    if runs_in_process(source):
        return evaluate_here(source, request)
    try:
        return isolation.run(source, request, timeout)
    except isolation.EvaluatorTimeout as exc:
        raise ExpressionTimeout(str(exc)) from None


def evaluate_here(source: str, request: PolicyRequest) -> PolicyResult:
    """Run the expression in this thread (no timeout: for short ones, and inside the evaluator process)."""
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
    result = function(**args)
    if isinstance(result, PolicyResult):
        return PolicyResult(result.passing, (*messages, *result.messages))
    return PolicyResult(bool(result), tuple(str(m) for m in messages))
