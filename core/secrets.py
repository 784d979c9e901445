"""The secret store: named values (passwords, DSNs, tokens) kept encrypted in core.Secret.

Encryption is Fernet (AES-128-CBC + HMAC-SHA256). The key comes from the environment
variable DRPLAN_SECRETS_KEY (a Fernet key, `Fernet.generate_key()`; several keys
separated by commas decrypt, the first one encrypts, for rotation), else it is derived
from settings.SECRET_KEY with HKDF, so changing SECRET_KEY without setting
DRPLAN_SECRETS_KEY makes stored secrets unreadable (decrypt() then says so).

A value never reaches the audit log (Secret.AUDIT_REDACT masks the ciphertext and the
value is stored nowhere else), the API or an error message. Code that handles values
at run time masks them with a Redactor.
"""

from __future__ import annotations

import base64
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


def create_secret(
    name: str,
    value: str,
    *,
    actor: Any = None,
    auth_method: str | AuthMethod = AuthMethod.SYSTEM,
    description: str = "",
) -> Secret:
    """Store a new secret; Conflict if the name is taken."""
    _validate(name, value, description)
    try:
        with transaction.atomic():
            secret = Secret.objects.create(name=name, description=description, ciphertext=encrypt(value))
            audit.record(AuditAction.CREATE, secret, actor=actor, auth_method=auth_method, after=audit.snapshot(secret))
    except IntegrityError:
        raise Conflict(f"secret '{name}' already exists", field="name") from None
    return secret


def update_secret(
    secret: Secret,
    *,
    value: str | None = None,
    description: str | None = None,
    actor: Any = None,
    auth_method: str | AuthMethod = AuthMethod.SYSTEM,
) -> Secret:
    """Replace the value and/or the description of a secret (None keeps the current one)."""
    _validate(secret.name, value, description)
    with transaction.atomic():
        locked = Secret.objects.select_for_update().get(pk=secret.pk)
        before = audit.snapshot(locked)
        if value is not None:
            locked.ciphertext = encrypt(value)
        if description is not None:
            locked.description = description
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
) -> Secret:
    """Create the secret or replace its value (description None: keep it, or "" on create)."""
    existing = Secret.objects.filter(name=name).first()
    if existing is None:
        try:
            return create_secret(name, value, actor=actor, auth_method=auth_method, description=description or "")
        except Conflict:  # created concurrently: fall through to update
            existing = Secret.objects.get(name=name)
    return update_secret(existing, value=value, description=description, actor=actor, auth_method=auth_method)


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
