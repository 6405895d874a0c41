#!/usr/bin/env python3
"""The offline verifier of audit-log exports, from a checkout of the server: the client's
`provenant_client.audit_verify`, which auditors run as `provenant audit verify` (README, "Audit log").

    python tools/audit_verify.py export.jsonl --public-key audit-key.pem [--tree-head sth.json ...]

(or `python -m tools.audit_verify ...` from the checkout's root). The verifier lives in the client distribution
because that is what auditors install; this entry point keeps the server checkout's old command working, and the
names the server's tests import. Run as a script, it takes the client from this checkout, not from whatever the
Python has installed, so the verifier and the rules it applies are the ones beside it.
"""

import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "clients" / "python" / "src"))

from provenant_client.audit_verify import (
    FilteredReport,
    Report,
    VerificationFailed,
    load_public_key,
    main,
    verify,
    verify_export,
    verify_filtered_export,
)

__all__ = [
    "FilteredReport",
    "Report",
    "VerificationFailed",
    "load_public_key",
    "main",
    "verify",
    "verify_export",
    "verify_filtered_export",
]

if __name__ == "__main__":
    sys.exit(main())
