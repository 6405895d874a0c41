"""Building OSV data as osv.dev publishes it, for the tests: records in the OSV schema (1.6) and the per-ecosystem
`all.zip` that holds one `<ID>.json` file per record."""

import json
import zipfile
from io import StringIO
from pathlib import Path

from django.core.management import call_command

PYSEC_NUMPY = "PYSEC-2021-857"


def osv_record(
    osv_id: str,
    *,
    package: str = "numpy",
    ecosystem: str = "PyPI",
    events: list[dict] | None = None,
    versions: list[str] | None = None,
    modified: str = "2024-05-01T10:00:00Z",
    aliases: list[str] | None = None,
    withdrawn: str | None = None,
    summary: str = "Incorrect bounds check",
) -> dict:
    """One OSV record affecting `package` in `ecosystem`: an ECOSYSTEM range of `events` (introduced 0, fixed
    1.22.0 unless given), the explicit `versions`, and a GIT range, as real PyPI records carry."""
    record = {
        "id": osv_id,
        "modified": modified,
        "published": "2021-12-17T19:15:00Z",
        "aliases": aliases if aliases is not None else ["CVE-2021-41495"],
        "summary": summary,
        "details": f"{summary} in {package}.",
        "affected": [
            {
                "package": {"ecosystem": ecosystem, "name": package, "purl": f"pkg:{ecosystem.lower()}/{package}"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": events or [{"introduced": "0"}, {"fixed": "1.22.0"}]},
                    {
                        "type": "GIT",
                        "repo": f"https://github.com/example/{package}",
                        "events": [{"introduced": "0"}, {"fixed": "4a5a2b1c9d0e"}],
                    },
                ],
                "versions": versions or [],
                "database_specific": {"source": "https://github.com/pypa/advisory-database"},
            }
        ],
        "references": [{"type": "ADVISORY", "url": f"https://osv.dev/vulnerability/{osv_id}"}],
        "schema_version": "1.6.0",
    }
    if withdrawn:
        record["withdrawn"] = withdrawn
    return record


def osv_archive(path: Path, records: list[dict], extra: dict[str, bytes] | None = None) -> Path:
    """An all.zip of `records`, each as `<id>.json`, plus any `extra` entries (name → bytes)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for record in records:
            bundle.writestr(f"{record['id']}.json", json.dumps(record))
        for name, content in (extra or {}).items():
            bundle.writestr(name, content)
    return path


def osv_imported(tmp_path: Path, records: list[dict], name: str = "all.zip") -> str:
    """Import `records` through `manage.py import_osv`, as an operator would; answers what the command printed."""
    out = StringIO()
    call_command("import_osv", str(osv_archive(tmp_path / name, records)), stdout=out)
    return out.getvalue()
