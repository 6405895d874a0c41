#!/usr/bin/env python3
"""The offline verifier of provenance attestations, from a checkout of the server: the client's
`provenant_client.attestation_verify`, which people run as `provenant attestation verify` (README, "Provenance
attestations").

    python tools/verify_attestation.py model.intoto.jsonl --key attestation-keys.json --file model.bin

Run as a script, it takes the client from this checkout, so the verifier and the DSSE rules it applies
(core/crypto/dsse.py, linked into the client) are the ones beside it.
"""

import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "clients" / "python" / "src"))

from provenant_client.attestation_verify import VerificationFailed, load_keys, main, read_envelope, verify

__all__ = ["VerificationFailed", "load_keys", "main", "read_envelope", "verify"]

if __name__ == "__main__":
    sys.exit(main())
