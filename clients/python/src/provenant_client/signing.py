"""Signing a file before it is pushed, in the OpenSSF model-signing format, so the server can check it against the
project's trusted keys (README, "Signing models").

Uses the `model_signing` library (`pip install 'provenant-client[signing]'`), which the rest of the client does
not need. The file is signed on its own (`model_signing sign key model.onnx` makes the same bundle): its manifest
lists one file under the name ".", which is how the server maps a signature to a version's single blob. Signing
reads the whole file once to hash it, before any byte is sent.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class SigningUnavailable(RuntimeError):
    """The `model_signing` library is not installed."""


def sign_file(
    path: str | os.PathLike[str],
    *,
    private_key: str | os.PathLike[str],
    certificate: str | os.PathLike[str] | None = None,
    chain: Sequence[str | os.PathLike[str]] = (),
    password: str | None = None,
) -> dict[str, Any]:
    """The model-signing bundle (the .sig file's JSON) of the file at `path`, signed with the elliptic-curve
    `private_key` (PEM); with `certificate` (the key's PEM certificate, and `chain` its issuers), a
    certificate-based signature, else a key-based one."""
    try:
        from model_signing import signing
    except ImportError:
        raise SigningUnavailable(
            "Signing needs the model_signing library: pip install 'provenant-client[signing]'."
        ) from None
    config = signing.Config()
    if certificate is not None:
        config.use_certificate_signer(
            private_key=Path(private_key), signing_certificate=Path(certificate), certificate_chain=list(chain)
        )
    else:
        config.use_elliptic_key_signer(private_key=Path(private_key), password=password)
    with tempfile.TemporaryDirectory(prefix="provenant-sign-") as scratch:
        signature_path = Path(scratch) / "model.sig"
        config.sign(Path(path), signature_path)
        return json.loads(signature_path.read_text())
