"""PAdES signatures on report PDFs (pyHanko) with the organisation's signing identity (core/signing.py), and
the verification of a PDF someone hands back: the signature, the certificate against the trust roots, and the
content against the report DRPlan stored."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from io import BytesIO
from typing import Any, TypeVar

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from compliance.pdf import KEYWORDS
from core import signing

FIELD_NAME = "DRPlanAttestation"


T = TypeVar("T")


def _asn1_cert(cert: Any) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def signer_for(identity: signing.SigningIdentity) -> signers.SimpleSigner:
    key_der = identity.key.private_bytes(  # type: ignore[union-attr]
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return signers.SimpleSigner(
        signing_cert=_asn1_cert(identity.cert),
        signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
        cert_registry=SimpleCertificateStore.from_certs([_asn1_cert(c) for c in identity.chain]),
    )


def _outside_any_event_loop(call: Callable[[], T]) -> T:
    """pyHanko runs its signing and validation with asyncio.run(), which refuses to start inside a running
    event loop (an async caller, or a test driving a browser through Playwright's sync API): there the call
    runs in a thread of its own, which has no loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return call()
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result()


def sign_pdf(
    pdf: bytes,
    *,
    reason: str,
    name: str,
    identity: signing.SigningIdentity | None = None,
    field_name: str = FIELD_NAME,
) -> bytes:
    """A PAdES B-B signature over the whole PDF, by the organisation (or the given identity)."""
    identity = identity or signing.identity()
    writer = IncrementalPdfFileWriter(BytesIO(pdf))
    meta = signers.PdfSignatureMetadata(
        field_name=field_name,
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        reason=reason[:200],
        name=name[:200],
        location="DRPlan",
    )
    out = _outside_any_event_loop(lambda: signers.sign_pdf(writer, meta, signer=signer_for(identity)))
    return out.getvalue()


@dataclass
class Verification:
    valid: bool = False
    reason: str = ""
    report: int | None = None
    checks: dict[str, bool | None] = field(default_factory=dict)
    signer: str = ""
    signer_fingerprint: str = ""
    signed_at: str | None = None
    sha256: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_pdf(data: bytes) -> PdfFileReader:
    """The parsed PDF, or ValueError saying why it is not one."""
    if not data.startswith(b"%PDF-"):
        raise ValueError("not a PDF (it does not start with %PDF-)")
    try:
        reader = PdfFileReader(BytesIO(data), strict=False)
        reader.root  # noqa: B018 (parse the catalog now, so a broken file fails here)
    except (PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise ValueError(f"not a readable PDF ({exc})") from exc
    return reader


def verify_signature(reader: PdfFileReader, result: Verification) -> bool:
    """Fill in the signature checks; True if the signature is intact, valid, trusted and covers the file."""
    signatures = reader.embedded_signatures
    result.checks["signed"] = bool(signatures)
    if not signatures:
        result.reason = "the PDF carries no signature"
        return False
    signature = signatures[-1]
    roots = [_asn1_cert(c) for c in signing.trust_roots()]
    context = ValidationContext(trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail")
    try:
        status = _outside_any_event_loop(lambda: validate_pdf_signature(signature, context))
    except Exception as exc:  # pyHanko raises many kinds on a damaged signature: all mean "not valid"
        result.checks.update({"intact": False})
        result.reason = f"the signature cannot be validated: {exc}"
        return False
    cert = status.signing_cert
    result.signer = cert.subject.human_friendly if cert is not None else ""
    result.signer_fingerprint = hashlib.sha256(cert.dump()).hexdigest() if cert is not None else ""
    result.signed_at = status.signer_reported_dt.isoformat() if status.signer_reported_dt else None
    covers_all = status.coverage is not None and status.coverage.name == "ENTIRE_FILE"
    result.checks.update(
        {"intact": status.intact, "valid": status.valid, "trusted": status.trusted, "covers_whole_file": covers_all}
    )
    if not status.intact:
        result.reason = "the PDF was changed after it was signed: the signed bytes no longer match their digest"
    elif not status.valid:
        result.reason = "the signature does not verify with the certificate it names"
    elif not status.trusted:
        result.reason = (
            f"the signing certificate ({result.signer}, SHA-256 {result.signer_fingerprint[:16]}…) is not trusted: it "
            "does not chain to a configured trust root"
        )
    elif not covers_all:
        result.reason = "content was added after the signature (it does not cover the whole file)"
    return not result.reason


def report_reference(reader: PdfFileReader) -> tuple[int, str] | None:
    """(report id, content SHA-256) from the PDF's keywords, as compliance/pdf.py wrote them."""
    try:
        keywords = " ".join(str(k) for k in (reader.document_meta_view.keywords or []))
    except (PdfError, KeyError, TypeError, AttributeError, ValueError):
        return None
    match = KEYWORDS.search(keywords)
    return (int(match.group(1)), match.group(2)) if match else None
