"""The organisation's signing identity: the key and certificate that sign compliance reports (PAdES, in
compliance/) and audit checkpoints (core/checkpoints.py), and the trust roots a signature is checked against.

Configured by DRPLAN_SIGNING_KEY / DRPLAN_SIGNING_CERT (PEM files; DRPLAN_SIGNING_KEY_PASSWORD, DRPLAN_SIGNING_CHAIN).
On the embedded default nothing is configured: the first use generates a self-signed RSA key and certificate in
var/signing/ (the key 0600, written atomically so two processes never end up with different keys). Trust roots
are DRPLAN_TRUST_ROOTS, or the signing certificate itself.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

KEY_NAME, CERT_NAME = "org-signing-key.pem", "org-signing-cert.pem"
_lock = threading.Lock()
_cache: dict[tuple[str, ...], SigningIdentity] = {}


@dataclass(frozen=True)
class SigningIdentity:
    key: PrivateKeyTypes
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    key_file: Path
    cert_file: Path
    generated: bool  # the embedded default's self-signed pair

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the certificate (DER), hex: what the admin shows and a verifier compares."""
        return fingerprint(self.cert)

    @property
    def subject(self) -> str:
        return self.cert.subject.rfc4514_string()


def fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _paths() -> tuple[Path, Path, bool]:
    key, cert = settings.SIGNING_KEY_FILE, settings.SIGNING_CERT_FILE
    if bool(key) != bool(cert):
        raise ImproperlyConfigured("Set both DRPLAN_SIGNING_KEY and DRPLAN_SIGNING_CERT, or neither.")
    if key:
        return Path(key), Path(cert), False
    directory = Path(settings.SIGNING_DIR)
    return directory / KEY_NAME, directory / CERT_NAME, True


def _write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` as 0600 without a moment where another process could read a partial file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    try:
        os.link(temporary, path)  # fails if another process won the race: keep theirs
    except FileExistsError:
        pass
    finally:
        temporary.unlink()


def generate_self_signed(key_file: Path, cert_file: Path, common_name: str = "DRPlan report signing") -> None:
    """A self-signed RSA-3072 key and certificate (10 years, digital signature + non-repudiation)."""
    key_file.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(key_file.parent, 0o700)
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "DRPlan (self-signed, embedded default)"),
        ]
    )
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_private(key_file, pem_key)
    if not cert_file.exists():
        # the certificate must belong to the key that won the race
        stored = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        if stored.public_key().public_numbers() == key.public_key().public_numbers():  # type: ignore[union-attr]
            _write_private(cert_file, cert.public_bytes(serialization.Encoding.PEM))


def identity() -> SigningIdentity:
    """The signing key and certificate (cached per configuration; generated on first use by default)."""
    key_file, cert_file, default = _paths()
    cache_key = (str(key_file), str(cert_file))
    with _lock:
        if cache_key in _cache:
            return _cache[cache_key]
        if default and not (key_file.exists() and cert_file.exists()):
            generate_self_signed(key_file, cert_file)
        if not key_file.exists() or not cert_file.exists():
            raise ImproperlyConfigured(f"signing key {key_file} or certificate {cert_file} does not exist")
        password = settings.SIGNING_KEY_PASSWORD.encode() or None
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=password)
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        chain = tuple(
            c for f in settings.SIGNING_CHAIN_FILES for c in x509.load_pem_x509_certificates(Path(f).read_bytes())
        )
        found = SigningIdentity(key, cert, chain, key_file, cert_file, default)
        _cache[cache_key] = found
        return found


def trust_roots() -> list[x509.Certificate]:
    """The certificates a signature must chain to: DRPLAN_TRUST_ROOTS, or the signing certificate itself."""
    if settings.TRUST_ROOT_FILES:
        return [c for f in settings.TRUST_ROOT_FILES for c in x509.load_pem_x509_certificates(Path(f).read_bytes())]
    return [identity().cert]


def summary() -> str:
    """One line for people (the admin): subject, fingerprint, where the pair lives."""
    found = identity()
    origin = "self-signed, generated under var/signing/" if found.generated else f"from {found.cert_file}"
    return f"signing certificate {found.subject} — SHA-256 fingerprint {found.fingerprint} ({origin})"


def sign_bytes(data: bytes) -> bytes:
    """A detached signature of `data` (RSA PKCS#1 v1.5 or ECDSA, SHA-256) with the organisation's key."""
    key = identity().key
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    from cryptography.hazmat.primitives.asymmetric import ec

    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    raise ImproperlyConfigured("the signing key must be RSA or EC")


def verify_bytes(cert: x509.Certificate, data: bytes, signature: bytes) -> bool:
    public = cert.public_key()
    try:
        if isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            from cryptography.hazmat.primitives.asymmetric import ec

            public.verify(signature, data, ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg,union-attr]
    except (InvalidSignature, TypeError, ValueError):
        return False
    return True


def reset_cache() -> None:
    """Forget loaded identities (tests that switch keys)."""
    with _lock:
        _cache.clear()
