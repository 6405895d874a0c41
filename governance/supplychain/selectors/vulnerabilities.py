"""Which imported OSV records affect a package at a version: the read behind the "no known vulnerable dependency"
gate. Nothing here writes.

Matching follows the OSV schema (https://ossf.github.io/osv-schema/#evaluation): a version is affected when an
`ECOSYSTEM` range's events, sorted, leave it between an `introduced` and the next `fixed` (exclusive) or
`last_affected` (inclusive), or when it is in the record's explicit `versions`. Ranges are compared with PyPI's
version order (`packaging.version`, PEP 440); for other ecosystems only the explicit versions are matched, since
their orders differ (`GIT` ranges name commits, not versions, and are never matched).
"""

from collections.abc import Iterable
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from governance.supplychain.models import AffectedPackage, Vulnerability

PYPI = "PyPI"


def package_name_normalized(ecosystem: str, name: str) -> str:
    """A package's name as stored: PEP 503's form for PyPI (`Scikit_Learn` is `scikit-learn`), else as given."""
    return canonicalize_name(name) if ecosystem == PYPI else name.strip()


@dataclass(frozen=True)
class Pin:
    """One dependency pinned to one version (`numpy==2.1.3`), with the requirement as the run recorded it."""

    name: str
    version: str
    requirement: str


def pins_parse(requirements: Iterable[object]) -> tuple[list[Pin], list[str]]:
    """The pinned requirements (`name==version`) among a run's `environment.dependencies`, and those that pin no
    single version (`numpy>=2`, a URL, text that is no requirement), which cannot be checked."""
    pins, unpinned = [], []
    for text in requirements:
        if not isinstance(text, str):
            unpinned.append(repr(text))
            continue
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            unpinned.append(text)
            continue
        specifiers = list(requirement.specifier)
        if len(specifiers) == 1 and specifiers[0].operator in ("==", "===") and "*" not in specifiers[0].version:
            pins.append(Pin(canonicalize_name(requirement.name), specifiers[0].version, text))
        else:
            unpinned.append(text)
    return pins, unpinned


def _parsed(ecosystem: str, version: str) -> Version | None:
    if ecosystem != PYPI:
        return None
    try:
        return Version(version)
    except InvalidVersion:
        return None


def _in_range(ecosystem: str, events: list, version: Version) -> bool:
    """Whether `version` lies in one OSV range, its events evaluated in version order."""
    bounds = []
    for event in events if isinstance(events, list) else []:
        if not isinstance(event, dict) or len(event) != 1:
            continue
        ((kind, value),) = event.items()
        if kind == "introduced" and value == "0":
            bounds.append((Version("0"), 0, kind))
            continue
        if not isinstance(value, str) or (bound := _parsed(ecosystem, value)) is None:
            continue
        # At one version, an introduction is seen before a fix or a limit, so "introduced 1, fixed 1" is empty.
        bounds.append((bound, 0 if kind == "introduced" else 1, kind))
    affected = False
    for bound, _, kind in sorted(bounds, key=lambda item: (item[0], item[1])):
        if kind == "introduced" and version >= bound:
            affected = True
        elif (kind in ("fixed", "limit") and version >= bound) or (kind == "last_affected" and version > bound):
            affected = False
    return affected


def affects(package: AffectedPackage, version: str) -> bool:
    """Whether the OSV data of one affected package says `version` of it is vulnerable."""
    if version in (package.versions or []):
        return True
    parsed = _parsed(package.ecosystem, version)
    if parsed is None:
        return False
    return any(
        isinstance(each, dict)
        and each.get("type") == "ECOSYSTEM"
        and _in_range(package.ecosystem, each.get("events"), parsed)
        for each in package.ranges or []
    )


def vulnerabilities_for(ecosystem: str, name: str, version: str) -> list[Vulnerability]:
    """The imported, not withdrawn, OSV records that say `name` at `version` is vulnerable, by id."""
    found = vulnerable_pins(ecosystem, [Pin(package_name_normalized(ecosystem, name), version, f"{name}=={version}")])
    return [vulnerability for _, vulnerability in found]


def vulnerable_pins(ecosystem: str, pins: list[Pin]) -> list[tuple[Pin, Vulnerability]]:
    """Each (pin, record) where an imported record affects the pinned version: one query for all the pins."""
    if not pins:
        return []
    names = {pin.name for pin in pins}
    packages = (
        AffectedPackage.objects.filter(ecosystem=ecosystem, name__in=names, vulnerability__withdrawn__isnull=True)
        .select_related("vulnerability")
        .order_by("vulnerability__osv_id", "id")
    )
    by_name: dict[str, list[AffectedPackage]] = {}
    for package in packages:
        by_name.setdefault(package.name, []).append(package)
    found = []
    for pin in pins:
        seen = set()
        for package in by_name.get(pin.name, []):
            if package.vulnerability_id not in seen and affects(package, pin.version):
                seen.add(package.vulnerability_id)
                found.append((pin, package.vulnerability))
    return found


def vulnerability_data_held(ecosystem: str) -> bool:
    """Whether any imported record names a package of `ecosystem` (if none, nothing can be judged). One index probe:
    the gates ask it for every version they judge."""
    return AffectedPackage.objects.filter(ecosystem=ecosystem).exists()
