"""The secret store: named values (passwords, DSNs, tokens) kept encrypted in core.Secret.

Encryption is Fernet (AES-128-CBC + HMAC-SHA256). The key comes from the environment
variable DRPLAN_SECRETS_KEY (a Fernet key, `Fernet.generate_key()`; several keys
separated by commas decrypt, the first one encrypts, for rotation), else it is derived
from settings.SECRET_KEY with HKDF, so changing SECRET_KEY without setting
DRPLAN_SECRETS_KEY makes stored secrets unreadable (decrypt() then says so).

A value never reaches the audit log (Secret.AUDIT_REDACT masks the ciphertext and the
value is stored nowhere else), the API or an error message. Code that handles values
at run time masks them with a Redactor.

A secret may name the hosts it can be sent to (`allowed_hosts`): `api.example.com`,
`api.example.com:8443`, `*.example.com` (any subdomain, not example.com itself), an IPv4
address or a bracketed IPv6 one, each with an optional port; no port means any port, an
empty list means no restriction. The engine passes the lists of the secrets a step used to
its actions (failover.engine.actions.StepContext), which refuse other hosts (host_allowed).
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import os
import re
from collections.abc import Iterable
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_slug
from django.db import IntegrityError, transaction

from core import audit
from core.choices import AuditAction, AuthMethod
from core.exceptions import Conflict, InvalidInput
from core.models import Secret

KEY_ENV = "DRPLAN_SECRETS_KEY"
MASK = "***"
# Shorter values are not treated as secrets by the Redactor (masking "a" would mangle every line).
MIN_REDACT_LENGTH = 4
MAX_VALUE_LENGTH = 16_384
_HKDF_INFO = b"drplan secrets v1"
MAX_ALLOWED_HOSTS = 100
_LABEL = r"(?!-)[a-z0-9_-]{1,63}(?<!-)"
_HOST_NAME = re.compile(rf"^(\*\.)?{_LABEL}(\.{_LABEL})*$")
_HOST_HELP = "(use host, host:port, *.example.com or *.example.com:port)"


def _allowed_host_pattern() -> str:
    """One allowed_hosts entry as a regular expression without lookarounds, for the API's schema: a host
    name (optionally `*.`) or a bracketed IPv6 address, then an optional port 1-65535. It accepts exactly
    the entries normalise_allowed_hosts takes, except a trailing dot and surrounding spaces."""
    label = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
    h16 = r"[0-9A-Fa-f]{1,4}"
    ipv6 = "|".join(
        [
            rf"(?:{h16}:){{7}}{h16}",
            rf"(?:{h16}:){{1,7}}:",
            rf"(?:{h16}:){{1,6}}:{h16}",
            rf"(?:{h16}:){{1,5}}(?::{h16}){{1,2}}",
            rf"(?:{h16}:){{1,4}}(?::{h16}){{1,3}}",
            rf"(?:{h16}:){{1,3}}(?::{h16}){{1,4}}",
            rf"(?:{h16}:){{1,2}}(?::{h16}){{1,5}}",
            rf"{h16}:(?::{h16}){{1,6}}",
            rf":(?:(?::{h16}){{1,7}}|:)",
        ]
    )
    port = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
    return rf"^(?:(?:\*\.)?{label}(?:\.{label})*|\[(?:{ipv6})\])(?::{port})?$"


ALLOWED_HOST_PATTERN = _allowed_host_pattern()


class SecretDecryptError(InvalidInput):
    """A stored secret cannot be decrypted with the current key."""

    default_code = "secret_undecryptable"


def _derived_key() -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(settings.SECRET_KEY.encode()))


def _fernet() -> MultiFernet:
    configured = os.environ.get(KEY_ENV, "").strip()
    if not configured:
        return MultiFernet([Fernet(_derived_key())])
    keys = []
    for position, key in enumerate(k.strip() for k in configured.split(",") if k.strip()):
        try:
            keys.append(Fernet(key.encode()))
        except ValueError:
            raise ImproperlyConfigured(
                f"{KEY_ENV} key #{position + 1} is not a valid Fernet key "
                "(32 url-safe base64-encoded bytes; make one with `Fernet.generate_key()`)"
            ) from None
    return MultiFernet(keys)


def encrypt(value: str) -> str:
    """Encrypt a value with the current key; returns url-safe ASCII."""
    return _fernet().encrypt(value.encode()).decode("ascii")


def decrypt(ciphertext: str, *, name: str = "") -> str:
    """Decrypt a value; SecretDecryptError (naming the secret, never its content) if the key does not fit."""
    try:
        return _fernet().decrypt(ciphertext.encode("ascii")).decode()
    except (InvalidToken, UnicodeError, ValueError):
        which = f"secret '{name}'" if name else "the secret"
        raise SecretDecryptError(
            f"{which} cannot be decrypted with the current key "
            f"({KEY_ENV} or SECRET_KEY changed since it was stored?); set it again",
            field="name" if name else None,
        ) from None


def _validate(name: str, value: str | None, description: str | None) -> None:
    try:
        validate_slug(name)
    except DjangoValidationError:
        raise InvalidInput(
            f"secret name {name!r} must contain only letters, digits, hyphens and underscores", field="name"
        ) from None
    if len(name) > 100:
        raise InvalidInput("secret name is longer than 100 characters", field="name")
    if value is not None:
        if not isinstance(value, str) or value == "":
            raise InvalidInput(f"the value of secret '{name}' must be a non-empty string", field="value")
        if len(value) > MAX_VALUE_LENGTH:
            raise InvalidInput(
                f"the value of secret '{name}' is longer than {MAX_VALUE_LENGTH} characters", field="value"
            )
    if description is not None and len(description) > 300:
        raise InvalidInput("description is longer than 300 characters", field="description")


def _split_host(entry: str) -> tuple[str, int | None]:
    """("api.example.com", 8443) from "api.example.com:8443"; IPv6 without brackets; ValueError if malformed."""
    host, port = entry, None
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(entry)
            port = int(rest[1:])
        host = str(ipaddress.IPv6Address(host))
    elif ":" in entry:
        host, _, number = entry.rpartition(":")
        port = int(number)
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(entry)
    if not entry.startswith("["):
        host = host.removesuffix(".")  # the root of the DNS: api.example.com. is api.example.com
        if not _HOST_NAME.match(host):
            raise ValueError(entry)
    return host, port


def normalise_allowed_hosts(entries: Any) -> list[str]:
    """The allow-list as stored: lower case, no trailing dot, no duplicates, in order.
    InvalidInput (field allowed_hosts) naming the first malformed entry."""
    if not isinstance(entries, (list, tuple)):
        raise InvalidInput("allowed_hosts must be a list of host names", field="allowed_hosts")
    if len(entries) > MAX_ALLOWED_HOSTS:
        raise InvalidInput(f"allowed_hosts has more than {MAX_ALLOWED_HOSTS} entries", field="allowed_hosts")
    result: list[str] = []
    for index, entry in enumerate(entries):
        try:
            if not isinstance(entry, str):
                raise ValueError(entry)
            text = entry.strip().lower()
            host, port = _split_host(text)
        except ValueError:
            raise InvalidInput(
                f"allowed_hosts[{index}]: {entry!r} is not a host {_HOST_HELP}", field="allowed_hosts"
            ) from None
        normal = (f"[{host}]" if ":" in host else host) + (f":{port}" if port is not None else "")
        if normal not in result:
            result.append(normal)
    return result


def host_allowed(patterns: Iterable[str], host: str, port: int | None) -> bool:
    """Does host:port match one of the (normalised) patterns?"""
    host = host.strip().lower().strip("[]").rstrip(".")
    with contextlib.suppress(ValueError):  # an IP address in its canonical form
        host = str(ipaddress.ip_address(host))
    for pattern in patterns:
        name, wanted_port = _split_host(pattern)
        if wanted_port is not None and wanted_port != port:
            continue
        if name == host or (name.startswith("*.") and host.endswith(name[1:]) and len(host) > len(name) - 1):
            return True
    return False


def create_secret(
    name: str,
    value: str,
    *,
    actor: Any = None,
    auth_method: str | AuthMethod = AuthMethod.SYSTEM,
    description: str = "",
    allowed_hosts: Any = (),
) -> Secret:
    """Store a new secret; Conflict if the name is taken."""
    _validate(name, value, description)
    hosts = normalise_allowed_hosts(list(allowed_hosts) if isinstance(allowed_hosts, tuple) else allowed_hosts)
    try:
        with transaction.atomic():
            secret = Secret.objects.create(
                name=name, description=description, ciphertext=encrypt(value), allowed_hosts=hosts
            )
            audit.record(AuditAction.CREATE, secret, actor=actor, auth_method=auth_method, after=audit.snapshot(secret))
    except IntegrityError:
        raise Conflict(f"secret '{name}' already exists", field="name") from None
    return secret


def update_secret(
    secret: Secret,
    *,
    value: str | None = None,
    description: str | None = None,
    allowed_hosts: Any = None,
    actor: Any = None,
    auth_method: str | AuthMethod = AuthMethod.SYSTEM,
) -> Secret:
    """Replace the value, the description and/or the allowed hosts of a secret (None keeps the current one)."""
    _validate(secret.name, value, description)
    hosts = normalise_allowed_hosts(allowed_hosts) if allowed_hosts is not None else None
    with transaction.atomic():
        locked = Secret.objects.select_for_update().get(pk=secret.pk)
        before = audit.snapshot(locked)
        if value is not None:
            locked.ciphertext = encrypt(value)
        if description is not None:
            locked.description = description
        if hosts is not None:
            locked.allowed_hosts = hosts
        locked.save()
        audit.record(
            AuditAction.UPDATE,
            locked,
            actor=actor,
            auth_method=auth_method,
            before=before,
            after=audit.snapshot(locked),
            comment="value replaced" if value is not None else "",
        )
    return locked


def set_secret(
    name: str,
    value: str,
    *,
    actor: Any = None,
    auth_method: str | AuthMethod = AuthMethod.SYSTEM,
    description: str | None = None,
    allowed_hosts: Any = None,
) -> Secret:
    """Create the secret or replace its value (description / allowed_hosts None: keep them, or
    empty on create)."""
    existing = Secret.objects.filter(name=name).first()
    if existing is None:
        try:
            return create_secret(
                name,
                value,
                actor=actor,
                auth_method=auth_method,
                description=description or "",
                allowed_hosts=allowed_hosts if allowed_hosts is not None else [],
            )
        except Conflict:  # created concurrently: fall through to update
            existing = Secret.objects.get(name=name)
    return update_secret(
        existing,
        value=value,
        description=description,
        allowed_hosts=allowed_hosts,
        actor=actor,
        auth_method=auth_method,
    )


def delete_secret(name: str, *, actor: Any = None, auth_method: str | AuthMethod = AuthMethod.SYSTEM) -> None:
    """Remove a secret; InvalidInput naming it if it does not exist."""
    with transaction.atomic():
        secret = Secret.objects.select_for_update().filter(name=name).first()
        if secret is None:
            raise InvalidInput(f"secret '{name}' is not defined", field="name")
        before = audit.snapshot(secret)
        pk = secret.pk
        secret.delete()
        secret.pk = pk
        audit.record(AuditAction.DELETE, secret, actor=actor, auth_method=auth_method, before=before)


def get_secret_value(name: str) -> str:
    """The decrypted value; InvalidInput "secret 'X' is not defined" if there is none."""
    ciphertext = Secret.objects.filter(name=name).values_list("ciphertext", flat=True).first()
    if ciphertext is None:
        raise InvalidInput(f"secret '{name}' is not defined", field="secret")
    return decrypt(ciphertext, name=name)


def read_secret(name: str) -> tuple[str, list[str]]:
    """(value, allowed hosts) in one read; InvalidInput "secret 'X' is not defined" if there is none."""
    row = Secret.objects.filter(name=name).values_list("ciphertext", "allowed_hosts").first()
    if row is None:
        raise InvalidInput(f"secret '{name}' is not defined", field="secret")
    return decrypt(row[0], name=name), list(row[1] or [])


def allowed_hosts_of(names: Iterable[str]) -> dict[str, list[str]]:
    """name -> allowed hosts, for the named secrets that have a non-empty allow-list."""
    rows = Secret.objects.filter(name__in=set(names)).values_list("name", "allowed_hosts")
    return {name: list(hosts) for name, hosts in rows if hosts}


def missing_secrets(names: Iterable[str]) -> list[str]:
    """The names (sorted) that have no stored secret, e.g. for a readiness check."""
    wanted = set(names)
    present = set(Secret.objects.filter(name__in=wanted).values_list("name", flat=True))
    return sorted(wanted - present)


class Redactor:
    """Replaces every known secret value by `***` in strings, dicts and lists (recursively).

    Longer values are replaced first, so a secret that contains another is masked whole.
    Values shorter than MIN_REDACT_LENGTH characters are ignored. Thread-safe for
    concurrent redact() calls; add() swaps the pattern atomically.
    """

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for value in values:
            self.add(value)

    def add(self, value: str) -> None:
        if not isinstance(value, str) or len(value) < MIN_REDACT_LENGTH or value in self._values:
            return
        self._values.add(value)
        ordered = sorted(self._values, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def __bool__(self) -> bool:
        return bool(self._values)

    def redact(self, obj: Any) -> Any:
        """A copy of obj with secret values masked; other types are returned unchanged."""
        pattern = self._pattern
        if pattern is None:
            return obj
        return self._redact(obj, pattern)

    def _redact(self, obj: Any, pattern: re.Pattern[str]) -> Any:
        if isinstance(obj, str):
            return pattern.sub(MASK, obj)
        if isinstance(obj, dict):
            return {self._redact(k, pattern): self._redact(v, pattern) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self._redact(item, pattern) for item in obj]
        return obj
