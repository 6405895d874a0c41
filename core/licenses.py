"""SPDX license expressions ("MIT OR Apache-2.0"), read with the `license-expression` library and its SPDX list.

An artifact version declares one when it is published; a promotion policy may hold it to an allowlist. Both sides
are normalized the same way (`GPL-3.0` is `GPL-3.0-only`, `mit` is `MIT`), so what is compared is what SPDX means.
"""

import re
from functools import cache

from license_expression import LicenseWithExceptionSymbol, Licensing, get_spdx_licensing

from core.errors import InvalidInput

MAX_EXPRESSION_CHARS = 500
MAX_ALLOWED_LICENSES = 200


@cache
def _licensing() -> Licensing:
    """The SPDX licensing, built once per process (it indexes several hundred keys and their aliases)."""
    return get_spdx_licensing()


#: SPDX's own identifiers for licenses not on its list (`LicenseRef-acme-internal`), which the list cannot know.
LICENSE_REF = re.compile(r"^(DocumentRef-[A-Za-z0-9.-]+:)?LicenseRef-[A-Za-z0-9.-]+$")


def license_expression_clean(text: str, field: str = "license") -> str:
    """`text` as its normalized SPDX expression ("" stays ""), or InvalidInput naming the unknown symbol."""
    text = (text or "").strip()
    if not text:
        return ""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise InvalidInput(f"A license expression is at most {MAX_EXPRESSION_CHARS} characters.", field=field)
    unreadable = InvalidInput(
        f"'{text}' is not an SPDX license expression: write one like 'MIT' or 'Apache-2.0 OR MIT'.", field=field
    )
    if not text.isprintable():
        raise InvalidInput("A license expression has no control characters (tab, newline, NUL…).", field=field)
    try:
        info = _licensing().validate(text)
    except Exception:  # the library fails on some malformed input (`MIT OR`) with errors of its own
        raise unreadable from None
    unknown = sorted(
        {symbol for symbol in info.invalid_symbols if symbol and not LICENSE_REF.match(str(symbol))}, key=str
    )
    if unknown:
        raise InvalidInput(
            f"Unknown SPDX license identifier(s): {', '.join(map(str, unknown))}. Use identifiers from "
            "https://spdx.org/licenses/ (e.g. MIT, Apache-2.0, GPL-3.0-only), or LicenseRef-<name> for your own.",
            field=field,
        )
    if info.normalized_expression is not None and not info.errors:
        return str(info.normalized_expression)
    # Only LicenseRef- identifiers were unknown (or the expression is malformed): parsed without the SPDX list's
    # check, the known keys still normalized.
    try:
        return str(_licensing().parse(text, validate=False, simple=False))
    except Exception:
        raise unreadable from None


def allowed_licenses_clean(value: object, field: str = "allowed_licenses") -> list[str]:
    """A policy's allowlist as sorted, distinct, normalized SPDX identifiers, or InvalidInput naming the fault."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidInput('Allowed licenses are a list of SPDX identifiers, like ["MIT", "Apache-2.0"].', field=field)
    if len(value) > MAX_ALLOWED_LICENSES:
        raise InvalidInput(f"At most {MAX_ALLOWED_LICENSES} allowed licenses.", field=field)
    cleaned = set()
    for item in value:
        normalized = license_expression_clean(item, field=field)
        if not normalized:
            raise InvalidInput("An allowed license is an SPDX identifier, not an empty string.", field=field)
        parsed = _licensing().parse(normalized)
        if len(_licensing().license_symbols(parsed, unique=True, decompose=False)) != 1:
            raise InvalidInput(
                f'\'{item}\' is an expression: list each allowed license on its own (e.g. "MIT", "Apache-2.0").',
                field=field,
            )
        cleaned.add(normalized)
    return sorted(cleaned)


def license_disallowed(expression: str, allowed: list[str]) -> list[str] | None:
    """None when `expression` is satisfied by `allowed` (each identifier true when listed, the expression's
    AND/OR evaluated by the library's boolean algebra: "MIT OR GPL-3.0-only" passes with MIT alone); otherwise the
    expression's identifiers that are not allowed. A `X WITH exception` term is allowed when it is listed as a whole
    or when X is (an exception only adds permissions)."""
    licensing = _licensing()
    parsed = licensing.parse(expression)
    allowed_set = set(allowed)
    truth, refused = {}, []
    for symbol in licensing.license_symbols(parsed, unique=True, decompose=False):
        ok = str(symbol) in allowed_set
        if isinstance(symbol, LicenseWithExceptionSymbol):
            ok = ok or symbol.license_symbol.key in allowed_set
        truth[symbol] = parsed.TRUE if ok else parsed.FALSE
        if not ok:
            refused.append(str(symbol))
    if parsed.subs(truth, simplify=True) == parsed.TRUE:
        return None
    return refused
