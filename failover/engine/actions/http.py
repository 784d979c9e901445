"""The http action: one request with the standard library; succeeds on the expected status and JSON checks.

    action: http
    with:
      method: GET                       # default GET
      url: "https://{{ params.host }}/health"
      headers: {Authorization: "Bearer {{ secrets.api_token }}"}
      body: {"drain": true}             # a string is sent as is; an object/array as JSON
      expected_status: [200, 204]       # default: any 2xx
      json_checks:
        - {path: "$.status", equals: "ok"}
        - {path: "replicas[0].lag", exists: true}
      verify_tls: true                  # default true
      follow_redirects: true            # default true; false: a 3xx is the answer

The request's timeout is the step's timeout (30 s when it has none); environment proxies
are not used (a DR check must see the real path). Redirects (http and https only) are
followed, but a redirect to another origin (scheme, host or port: also an https → http
downgrade) does not carry Authorization, Proxy-Authorization, Cookie, nor any header whose
value holds a secret the step used. When a secret the step used has allowed hosts, the URL
and every redirect hop must be one of them (StepContext.refuse_host), checked before connecting.
Output: {status, body (first 64 KiB as text), json (parsed body, if JSON), elapsed_ms}.
"""

from __future__ import annotations

import json
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Collection
from typing import Any

from failover.engine.actions import ActionResult, StepContext, executor
from failover.engine.actions.blocking import run_blocking, step_timeout

MAX_BODY_CHARS = 64 * 1024  # kept in the output
MAX_READ_BYTES = 4 * 1024 * 1024  # read (and parsed for the JSON checks) at most
CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "cookie")  # never sent to another origin
_PATH_TOKEN = re.compile(r"\.?([^.\[\]]+)|\[(-?\d+)\]|\[['\"]([^'\"]+)['\"]\]")
_ABSENT = object()


def json_path(document: Any, path: str) -> Any:
    """Resolve `$.a.b[0].c`, `a.b.0.c` or `$['a']`; returns _ABSENT (module-private) if a part is missing."""
    rest = path.strip()
    if rest.startswith("$"):
        rest = rest[1:]
    value = document
    position = 0
    while position < len(rest):
        match = _PATH_TOKEN.match(rest, position)
        if match is None:
            raise ValueError(f"cannot parse JSON path {path!r} at {rest[position:]!r}")
        position = match.end()
        key, index, quoted = match.groups()
        part: Any = quoted if quoted is not None else (int(index) if index is not None else key)
        if isinstance(value, list):
            if isinstance(part, str) and re.fullmatch(r"-?\d+", part):
                part = int(part)
            if not isinstance(part, int) or not -len(value) <= part < len(value):
                return _ABSENT
            value = value[part]
        elif isinstance(value, dict):
            if str(part) not in value:
                return _ABSENT
            value = value[str(part)]
        else:
            return _ABSENT
    return value


def _status_ok(status: int, expected: Any) -> bool:
    if expected is None:
        return 200 <= status < 300
    if isinstance(expected, list):
        return status in [int(e) for e in expected]
    return status == int(expected)


def _describe_expected(expected: Any) -> str:
    if expected is None:
        return "2xx"
    if isinstance(expected, list):
        return " or ".join(str(e) for e in expected)
    return str(expected)


def _run_checks(document: Any, checks: list[dict[str, Any]]) -> list[str]:
    failures = []
    for check in checks:
        path = check["path"]
        try:
            found = json_path(document, path)
        except ValueError as exc:
            failures.append(f"json check {path}: {exc}")
            continue
        wants_absent = check.get("exists") is False
        if wants_absent:
            if found is not _ABSENT:
                failures.append(f"json check {path}: expected it to be absent, found {found!r}")
            continue
        if found is _ABSENT:
            failures.append(f"json check {path}: not found in the response")
        elif "equals" in check and found != check["equals"]:
            failures.append(f"json check {path}: expected {check['equals']!r}, got {found!r}")
    return failures


def _build_request(params: dict[str, Any]) -> urllib.request.Request:
    url = str(params["url"]).strip()
    if not url.lower().startswith(("http://", "https://")):
        raise ValueError(f"url must start with http:// or https:// (got {url[:40]!r})")
    headers = {str(k): str(v) for k, v in (params.get("headers") or {}).items()}
    body = params.get("body")
    data: bytes | None = None
    if isinstance(body, (dict, list)):
        data = json.dumps(body).encode()
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
    elif body is not None:
        data = str(body).encode()
    method = str(params.get("method") or "GET").upper()
    return urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 (scheme checked above)


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL, the port filled in from the scheme."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)


class RedirectRefused(Exception):
    """A redirect the action will not follow; the message says where to and why."""


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects (unless told not to); on a redirect to another origin drops the credential
    headers and any header holding a secret value; `check(url)` may refuse a hop (returns why)."""

    def __init__(
        self, follow: bool, secret_values: Collection[str], log: Callable[[str], None], check: Callable[[str], str]
    ) -> None:
        self.follow = follow
        self.secret_values = secret_values
        self.log = log
        self.check = check

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        if not self.follow:
            return None  # urllib then raises HTTPError: the 3xx is the answer
        if urllib.parse.urlsplit(newurl).scheme.lower() not in ("http", "https"):
            raise RedirectRefused(f"redirected to {newurl}: only http and https redirects are followed")
        problem = self.check(newurl)
        if problem:
            raise RedirectRefused(f"redirected to {newurl}: {problem}")
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and origin(new.full_url) != origin(req.full_url):
            dropped = sorted(
                name
                for name, value in new.headers.items()
                if name.lower() in CREDENTIAL_HEADERS or any(s and s in value for s in self.secret_values)
            )
            for name in dropped:
                del new.headers[name]
            if dropped:
                names = ", ".join(name.lower() for name in dropped)
                self.log(f"redirected to another origin ({newurl}): not sending {names}")
        return new


def _send(
    request: urllib.request.Request, timeout: float, verify_tls: bool, redirects: _Redirects
) -> tuple[int, bytes, str]:
    handlers: list[Any] = [urllib.request.ProxyHandler({}), redirects]
    if request.full_url.lower().startswith("https://"):
        context = ssl.create_default_context()
        if not verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    try:
        response = opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as error:  # a non-2xx answer is still an answer
        response = error
    with response:
        raw = response.read(MAX_READ_BYTES + 1)
        return response.status, raw, response.headers.get("Content-Type", "") or ""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError):
        if not isinstance(exc.reason, BaseException):
            return str(exc.reason)
        exc = exc.reason
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@executor("http")
def run_http(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    try:
        request = _build_request(params)
    except (ValueError, TypeError) as exc:
        return ActionResult(False, error=f"http: {exc}")
    target = f"{request.get_method()} {request.full_url}"
    refused = ctx.refuse_host(*origin(request.full_url)[1:])
    if refused:  # a secret this step used may not go there: not even a connection
        return ActionResult(False, error=f"{target}: {refused}")
    timeout = step_timeout(ctx)
    follow = bool(params.get("follow_redirects", True))
    redirects = _Redirects(follow, ctx.secret_values, ctx.log, lambda url: ctx.refuse_host(*origin(url)[1:]))
    verify_tls = bool(params.get("verify_tls", True))
    started = time.monotonic()
    outcome = run_blocking(lambda: _send(request, timeout, verify_tls, redirects), ctx, timeout)
    elapsed_ms = round((time.monotonic() - started) * 1000, 1)
    if outcome.stopped:
        return ActionResult(False, output={"elapsed_ms": elapsed_ms}, error=f"{target}: {outcome.stopped}")
    if isinstance(outcome.exception, RedirectRefused):
        return ActionResult(False, output={"elapsed_ms": elapsed_ms}, error=f"{target}: {outcome.exception}")
    if outcome.exception is not None:
        return ActionResult(
            False, output={"elapsed_ms": elapsed_ms}, error=f"{target}: request failed: {_reason(outcome.exception)}"
        )
    status, raw, content_type = outcome.value
    truncated = len(raw) > MAX_READ_BYTES
    raw = raw[:MAX_READ_BYTES]
    text = raw.decode("utf-8", errors="replace")
    document: Any = _ABSENT
    if "json" in content_type.lower() or text.lstrip()[:1] in ("{", "["):
        try:
            document = json.loads(text)
        except ValueError:
            document = _ABSENT
    output = {
        "status": status,
        "body": text[:MAX_BODY_CHARS],
        "json": document if document is not _ABSENT and len(text) <= MAX_BODY_CHARS else None,
        "elapsed_ms": elapsed_ms,
    }
    if truncated or len(text) > MAX_BODY_CHARS:
        output["body_truncated"] = True
    ctx.log(f"{target} → {status} in {elapsed_ms:g} ms")
    expected = params.get("expected_status")
    if not _status_ok(status, expected):
        return ActionResult(
            False, output=output, error=f"{target}: status {status} (expected {_describe_expected(expected)})"
        )
    checks = params.get("json_checks") or []
    if checks:
        if document is _ABSENT:
            return ActionResult(False, output=output, error=f"{target}: the response is not JSON; json checks failed")
        failures = _run_checks(document, checks)
        if failures:
            return ActionResult(False, output=output, error=f"{target}: " + "; ".join(failures))
    return ActionResult(True, output=output)
