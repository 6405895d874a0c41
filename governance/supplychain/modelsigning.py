"""Reading and checking OpenSSF model-signing bundles with the `model_signing` library, with no Django and no
network: the services give it paths and PEM text, and it answers a verdict with a sentence.

What a signature covers: `model_signing sign` hashes a model (a file or a directory) into a manifest of
(name, digest) pairs and signs an in-toto statement of it. A version is one file, so a bundle is accepted when its
manifest lists exactly one file: either a single file signed on its own (`model_signing sign key model.onnx`,
manifest name ".") or a directory holding just that file (`model_signing sign key model_dir/`, manifest name
"model.onnx"). The file's own name is not part of what is checked in the first case; in the second it is the
directory layout the verifier rebuilds around the version's bytes. Key-based bundles (an elliptic-curve public
key) and certificate-based ones (an X.509 chain) are checked; Sigstore keyless bundles would need Sigstore's
online trust root and transparency log, so they are refused.
"""

import base64
import binascii
import hashlib
import json
import logging
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

KEY = "key"
CERTIFICATE = "certificate"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
BUNDLE_MEDIA_PREFIX = "application/vnd.dev.sigstore.bundle"

logger = logging.getLogger(__name__)


class BundleError(ValueError):
    """A bundle or a PEM the server cannot use, with a sentence saying what to send instead."""


@dataclass(frozen=True)
class BundleFacts:
    """What a bundle says before any check: read from its unverified payload, only to lay the file out."""

    method: str
    #: The manifest's one file name: "." for a file signed on its own, else its path inside the signed directory.
    resource: str
    algorithm: str
    #: The signed digest of that file, hex.
    digest: str
    model_name: str


@dataclass(frozen=True)
class TrustedKey:
    id: int
    name: str
    method: str
    pem: str


@dataclass(frozen=True)
class Verdict:
    verified: bool
    key_id: int | None
    detail: str


def read_bundle(bundle: object) -> BundleFacts:
    """The facts of an uploaded bundle (the JSON of model_signing's .sig file), or BundleError saying what is
    wrong with it."""
    if not isinstance(bundle, dict):
        raise BundleError("A signature is the JSON object model_signing writes (the .sig file), not a list or text.")
    if not str(bundle.get("mediaType", "")).startswith(BUNDLE_MEDIA_PREFIX):
        raise BundleError(
            f"Not a Sigstore bundle: mediaType must start with '{BUNDLE_MEDIA_PREFIX}'. Upload the .sig file that "
            "`model_signing sign` wrote."
        )
    material = bundle.get("verificationMaterial")
    if not isinstance(material, dict):
        raise BundleError("The bundle has no verificationMaterial.")
    if material.get("tlogEntries") or "certificate" in material:
        raise BundleError(
            "This is a Sigstore keyless signature: checking it needs Sigstore's online services, which the server "
            "does not call. Sign with a key (`model_signing sign key`) or a certificate (`model_signing sign "
            "certificate`)."
        )
    if "publicKey" in material:
        method = KEY
    elif "x509CertificateChain" in material:
        method = CERTIFICATE
    else:
        raise BundleError("The bundle names neither a public key nor a certificate chain.")
    envelope = bundle.get("dsseEnvelope")
    if not isinstance(envelope, dict) or not envelope.get("signatures"):
        raise BundleError("The bundle has no signed DSSE envelope.")
    try:
        statement = json.loads(base64.b64decode(envelope.get("payload", ""), validate=True))
    except (binascii.Error, ValueError):
        raise BundleError("The bundle's payload is not base64-encoded JSON.") from None
    if not isinstance(statement, dict) or statement.get("predicateType") != PREDICATE_TYPE:
        raise BundleError(f"The bundle's statement is not a model signature (predicateType {PREDICATE_TYPE}).")
    predicate = statement.get("predicate") or {}
    resources = predicate.get("resources") if isinstance(predicate, dict) else None
    if not isinstance(resources, list) or not resources:
        raise BundleError("The bundle's manifest lists no file.")
    if len(resources) != 1:
        raise BundleError(
            f"The signature covers {len(resources)} files, and a version is one file: sign the file itself "
            "(`model_signing sign key model.onnx`) or a directory holding only it."
        )
    resource = resources[0] if isinstance(resources[0], dict) else {}
    name, algorithm, digest = (str(resource.get(field, "")) for field in ("name", "algorithm", "digest"))
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts:
        raise BundleError(f"The manifest names a file the server cannot lay out: {name[:100]!r}.")
    subjects = statement.get("subject") or [{}]
    model_name = str(subjects[0].get("name", "")) if isinstance(subjects[0], dict) else ""
    return BundleFacts(method=method, resource=name, algorithm=algorithm, digest=digest, model_name=model_name)


def pem_fingerprint(method: str, pem: str) -> str:
    """SHA-256 (hex) of a trusted key's DER: the public key for `key`, the concatenated certificates for
    `certificate`. BundleError when the PEM is not what the method needs."""
    data = pem.encode()
    if method == KEY:
        try:
            public_key = serialization.load_pem_public_key(data)
        except ValueError:
            raise BundleError(
                "Not a PEM public key: send the signer's public key (-----BEGIN PUBLIC KEY-----)."
            ) from None
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise BundleError("model_signing signs with elliptic-curve keys (P-256, P-384, P-521): send one of those.")
        return hashlib.sha256(
            public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        ).hexdigest()
    if method == CERTIFICATE:
        try:
            certificates = x509.load_pem_x509_certificates(data)
        except ValueError:
            raise BundleError(
                "Not PEM certificates: send the CA or root certificates (-----BEGIN CERTIFICATE-----) your signing "
                "certificates chain up to."
            ) from None
        return hashlib.sha256(b"".join(c.public_bytes(serialization.Encoding.DER) for c in certificates)).hexdigest()
    raise BundleError(f"Unknown signing method {method!r}: use 'key' or 'certificate'.")


def lay_out(facts: BundleFacts, root: Path, chunks: Iterable[bytes]) -> Path:
    """Write the version's bytes under `root` where the manifest expects its one file; answer the path to verify
    (the file itself, or the directory holding it). Reads `chunks` once: the whole file is written to disk, since
    the library hashes paths."""
    if facts.resource == ".":
        target = model_path = root / "model"
    else:
        model_path = root / "model"
        target = model_path.joinpath(*PurePosixPath(facts.resource).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        for chunk in chunks:
            out.write(chunk)
    return model_path


def verify(bundle: dict, facts: BundleFacts, model_path: Path, keys: Iterable[TrustedKey]) -> Verdict:
    """Check `bundle` over the file(s) at `model_path` against each of `keys` (of the bundle's method) in turn.

    A key that did not make the signature fails on the signature alone, before any hashing, so trying several
    costs one hash of the bytes, by the key that did. Verified by the first key that accepts both signature and
    bytes; otherwise the reason of the most telling failure (the bytes differ, over the key is not trusted).
    """
    from model_signing import verifying  # imported here: it loads sigstore and OpenSSL bindings (~0.5 s)

    candidates = [key for key in keys if key.method == facts.method]
    if not candidates:
        return Verdict(False, None, no_key_sentence(facts.method))
    with tempfile.TemporaryDirectory(prefix="provenant-sig-") as scratch:
        signature_path = Path(scratch) / "model.sig"
        signature_path.write_text(json.dumps(bundle))
        mismatch: str | None = None
        for key in candidates:
            material = list(_pem_files(Path(scratch), key))
            config = verifying.Config()
            if facts.method == KEY:
                config.use_elliptic_key_verifier(public_key=material[0])
            else:
                config.use_certificate_verifier(certificate_chain=material)
            try:
                config.verify(model_path, signature_path)
            except ValueError as error:
                if str(error).startswith("Signature mismatch"):
                    mismatch = (
                        f"The signature by trusted key '{key.name}' is genuine, but the version's bytes are not "
                        f"the ones it signed ({facts.algorithm} {facts.digest[:16]}… signed): the file was changed "
                        "after signing, or the signature belongs to another file."
                    )
                    continue
                logger.info("Signature not made by trusted key %s: %s", key.name, error)
            except Exception as error:  # OpenSSL, cryptography and protobuf raise their own
                logger.info("Signature not verified by trusted key %s: %r", key.name, error)
            else:
                return Verdict(True, key.id, f"Signed by trusted key '{key.name}' over these exact bytes.")
    if mismatch:
        return Verdict(False, None, mismatch)
    names = ", ".join(f"'{key.name}'" for key in candidates)
    what = "key" if facts.method == KEY else "certificate chain"
    return Verdict(
        False,
        None,
        f"No trusted {what} of the project made this signature (tried {names}): it was signed by an untrusted "
        "key, or its bundle was altered.",
    )


def no_key_sentence(method: str) -> str:
    what = "public key" if method == KEY else "certificate chain"
    return (
        f"The project trusts no {what} yet, so this {method}-based signature cannot be verified: a maintainer "
        "adds one under /api/v1/projects/{slug}/trusted-keys/ and the signature is checked again."
    )


def _pem_files(scratch: Path, key: TrustedKey) -> Iterator[Path]:
    path = scratch / f"trusted-{key.id}.pem"
    path.write_text(key.pem)
    yield path
