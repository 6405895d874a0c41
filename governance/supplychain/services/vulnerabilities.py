"""Importing OSV vulnerability data offline: the `all.zip` osv.dev publishes per ecosystem
(https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip), a zip of one OSV-schema JSON file per record.

The import is an upsert by id: a record is written when it is new or its `modified` is later than the stored one,
and left alone otherwise, so importing the same archive twice writes nothing the second time. Records are read and
written a batch at a time (each batch its own transaction), so memory stays bounded whatever the archive's size,
and an import stopped half-way is finished by running it again. A record that is not OSV JSON is skipped and
counted, never half-stored. One audit entry records the import, its archive's digest and its counts.
"""

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.audit.actions import AuditAction
from core.audit.recorder import AuditObject
from core.changes import ChangeSet
from core.errors import InvalidInput
from governance.supplychain.models import AffectedPackage, Vulnerability
from governance.supplychain.selectors.vulnerabilities import package_name_normalized

BATCH_SIZE = 500
#: A record larger than this is no OSV record (the largest published are a few hundred kB).
MAX_RECORD_BYTES = 16 * 1024 * 1024
MAX_SKIPS_NAMED = 20


@dataclass
class OsvImportReport:
    """What an import did: records created, updated (a newer `modified`), unchanged, and skipped (with why)."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    skip_reasons: list[str] = field(default_factory=list)
    ecosystems: set[str] = field(default_factory=set)
    sha256: str = ""

    def skip(self, name: str, reason: str) -> None:
        self.skipped += 1
        if len(self.skip_reasons) < MAX_SKIPS_NAMED:
            self.skip_reasons.append(f"{name}: {reason}")


@dataclass(frozen=True)
class _Record:
    osv_id: str
    modified: datetime
    published: datetime | None
    withdrawn: datetime | None
    aliases: list[str]
    summary: str
    affected: list[dict[str, Any]]


def _when(value: object, what: str) -> datetime | None:
    if value is None:
        return None
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise ValueError(f"`{what}` is not an RFC 3339 time")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _list(value: object) -> list:
    """A list OSV says is one, or [] when the record holds something else there."""
    return value if isinstance(value, list) else []


def _record(data: object) -> _Record:
    """An OSV record's fields this area keeps, or ValueError saying what is wrong with it."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    osv_id = data.get("id")
    if not isinstance(osv_id, str) or not osv_id.strip() or len(osv_id) > 100:
        raise ValueError("no `id` of 1-100 characters")
    modified = _when(data.get("modified"), "modified")
    if modified is None:
        raise ValueError("no `modified` time")
    affected = []
    for item in _list(data.get("affected")):
        package = item.get("package") if isinstance(item, dict) else None
        if not isinstance(package, dict):
            continue  # a record about a Git repository alone names no package
        ecosystem, name = package.get("ecosystem"), package.get("name")
        if not (isinstance(ecosystem, str) and isinstance(name, str) and ecosystem.strip() and name.strip()):
            continue
        ranges = [each for each in _list(item.get("ranges")) if isinstance(each, dict)]
        versions = [v for v in _list(item.get("versions")) if isinstance(v, str)]
        affected.append(
            {
                "ecosystem": ecosystem.strip()[:100],
                "name": package_name_normalized(ecosystem.strip(), name)[:300],
                "ranges": ranges,
                "versions": versions,
            }
        )
    aliases = [alias for alias in _list(data.get("aliases")) if isinstance(alias, str)]
    summary = data.get("summary") or data.get("details") or ""
    return _Record(
        osv_id=osv_id.strip(),
        modified=modified,
        published=_when(data.get("published"), "published"),
        withdrawn=_when(data.get("withdrawn"), "withdrawn"),
        aliases=aliases,
        summary=summary[:2000] if isinstance(summary, str) else "",
        affected=affected,
    )


def _values(record: _Record, now: datetime) -> dict[str, Any]:
    """A record's stored fields but its id."""
    return {
        "modified": record.modified,
        "published": record.published,
        "withdrawn": record.withdrawn,
        "aliases": record.aliases,
        "summary": record.summary,
        "imported_at": now,
    }


def _write_batch(records: dict[str, _Record], report: OsvImportReport, now: datetime) -> None:
    """Upsert one batch by id and `modified`, in one transaction."""
    with transaction.atomic():
        stored = {
            osv_id: (pk, modified)
            for osv_id, pk, modified in Vulnerability.objects.select_for_update()
            .filter(osv_id__in=records)
            .values_list("osv_id", "pk", "modified")
        }
        fresh, renewed = [], []
        for osv_id, record in records.items():
            if osv_id not in stored:
                fresh.append(record)
            elif record.modified > stored[osv_id][1]:
                renewed.append(record)
            else:
                report.unchanged += 1
        created = Vulnerability.objects.bulk_create([Vulnerability(osv_id=r.osv_id, **_values(r, now)) for r in fresh])
        ids = {vulnerability.osv_id: vulnerability.pk for vulnerability in created}
        if not all(ids.values()):  # a backend that answers no ids on bulk insert
            ids = dict(Vulnerability.objects.filter(osv_id__in=[r.osv_id for r in fresh]).values_list("osv_id", "pk"))
        for record in renewed:
            pk = stored[record.osv_id][0]
            Vulnerability.objects.filter(pk=pk).update(**_values(record, now))
            ids[record.osv_id] = pk
        AffectedPackage.objects.filter(vulnerability_id__in=[stored[r.osv_id][0] for r in renewed]).delete()
        AffectedPackage.objects.bulk_create(
            [
                AffectedPackage(vulnerability_id=ids[record.osv_id], **affected)
                for record in (*fresh, *renewed)
                for affected in record.affected
            ]
        )
        report.created += len(fresh)
        report.updated += len(renewed)
        for record in (*fresh, *renewed):
            report.ecosystems.update(affected["ecosystem"] for affected in record.affected)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def osv_import(*, archive: str | Path, batch_size: int = BATCH_SIZE) -> OsvImportReport:
    """Import an osv.dev archive (a zip of OSV JSON files). InvalidInput if it is no zip; see the module's docstring.

    Run by an operator (`manage.py import_osv`), so the audit entry names no person: the system imported it.
    """
    path = Path(archive)
    if not path.is_file():
        raise InvalidInput(f"{path} is not a file.", field="archive")
    if not zipfile.is_zipfile(path):
        raise InvalidInput(
            f"{path} is not a zip archive: give the all.zip osv.dev publishes for an ecosystem.", field="archive"
        )
    report = OsvImportReport(sha256=_sha256(path))
    now = timezone.now()
    with zipfile.ZipFile(path) as bundle:
        batch: dict[str, _Record] = {}
        for entry in bundle.infolist():
            if entry.is_dir() or not entry.filename.endswith(".json"):
                continue
            if entry.file_size > MAX_RECORD_BYTES:
                report.skip(entry.filename, f"larger than {MAX_RECORD_BYTES:,} bytes")
                continue
            try:
                record = _record(json.loads(bundle.read(entry)))
            except (ValueError, UnicodeDecodeError, zipfile.BadZipFile) as error:
                report.skip(entry.filename, str(error) or "not JSON")
                continue
            kept = batch.get(record.osv_id)
            if kept is None or record.modified > kept.modified:
                batch[record.osv_id] = record
            if len(batch) >= batch_size:
                _write_batch(batch, report, now)
                batch = {}
        if batch:
            _write_batch(batch, report, now)
    with transaction.atomic(), ChangeSet() as changes:
        changes.audit(
            AuditAction.VULNERABILITY_DATA_IMPORTED,
            obj=AuditObject(type="vulnerability_data", id=report.sha256, label=f"OSV archive {path.name}"),
            changes={
                "sha256": report.sha256,
                "ecosystems": sorted(report.ecosystems),
                "created": report.created,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "skipped": report.skipped,
            },
        )
    return report
