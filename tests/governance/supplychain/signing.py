"""Real model-signing material for the tests: elliptic-curve keys, a CA with a code-signing leaf certificate, and
bundles made by the `model_signing` library itself, exactly as `model_signing sign key|certificate` makes them."""

import datetime
import json
from dataclasses import dataclass
from pathlib import Path

import model_signing
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class KeyPair:
    private_path: Path
    public_pem: str


@dataclass(frozen=True)
class CertificateSigner:
    private_path: Path
    certificate_path: Path
    ca_path: Path
    ca_pem: str


def ec_key(folder: Path, name: str = "signer", curve: ec.EllipticCurve | None = None) -> KeyPair:
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(curve or ec.SECP256R1())
    private_path = folder / f"{name}.key.pem"
    private_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return KeyPair(private_path, public_pem.decode())


def _certificate(subject: str, public_key, issuer: str, issuer_key, *, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def certificate_signer(folder: Path, name: str = "release") -> CertificateSigner:
    """A root CA and a leaf certificate for code signing issued by it, with the leaf's private key."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate(f"{name} CA", ca_key.public_key(), f"{name} CA", ca_key, ca=True)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _certificate(f"{name} signer", leaf_key.public_key(), f"{name} CA", ca_key, ca=False)
    private_path = folder / f"{name}.leaf.key.pem"
    private_path.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    certificate_path = folder / f"{name}.leaf.pem"
    certificate_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    ca_path = folder / f"{name}.ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return CertificateSigner(private_path, certificate_path, ca_path, ca_path.read_text())


def sign_with_key(model_path: Path, key: KeyPair) -> dict:
    """The bundle `model_signing sign key --private_key … model_path` writes, as JSON."""
    signature_path = model_path.parent / f"{model_path.name}.sig"
    model_signing.signing.Config().use_elliptic_key_signer(private_key=key.private_path).sign(
        model_path, signature_path
    )
    return json.loads(signature_path.read_text())


def sign_with_certificate(model_path: Path, signer: CertificateSigner) -> dict:
    """The bundle `model_signing sign certificate …` writes, with the leaf and its CA in the chain."""
    signature_path = model_path.parent / f"{model_path.name}.sig"
    model_signing.signing.Config().use_certificate_signer(
        private_key=signer.private_path, signing_certificate=signer.certificate_path, certificate_chain=[signer.ca_path]
    ).sign(model_path, signature_path)
    return json.loads(signature_path.read_text())
