"""OSV data imported offline (governance/supplychain/services/vulnerabilities.py, `manage.py import_osv`) and matched
against a package at a version (selectors/vulnerabilities.py): an archive in osv.dev's format is imported once
however often it is given, a newer record replaces an older, bad entries are skipped and counted, and ranges are
read as the OSV schema says."""

import json

import pytest
from django.core.management import CommandError, call_command

from core.models import AuditEntry
from governance.supplychain.models import AffectedPackage, Vulnerability
from governance.supplychain.selectors.vulnerabilities import pins_parse, vulnerabilities_for
from governance.supplychain.services.vulnerabilities import osv_import
from tests.governance.supplychain.osv import PYSEC_NUMPY, osv_archive, osv_imported, osv_record

pytestmark = pytest.mark.django_db


def ids(found) -> list[str]:
    return [vulnerability.osv_id for vulnerability in found]


# Importing ---------------------------------------------------------------------------------------------------------


def test_an_archive_is_imported_once_however_often_it_is_given(tmp_path):
    records = [osv_record(PYSEC_NUMPY), osv_record("PYSEC-2023-1", package="Pillow", events=[{"introduced": "1.0"}])]

    first = osv_imported(tmp_path, records)
    second = osv_imported(tmp_path, records)

    assert "2 new, 0 updated, 0 unchanged, 0 skipped; ecosystems: PyPI." in first
    assert "0 new, 0 updated, 2 unchanged, 0 skipped" in second
    assert Vulnerability.objects.count() == 2
    stored = Vulnerability.objects.get(osv_id=PYSEC_NUMPY)
    assert (stored.aliases, stored.summary) == (["CVE-2021-41495"], "Incorrect bounds check")
    # Names are stored as PEP 503 says, so "Pillow" is found as "pillow"; the GIT range is kept as OSV wrote it.
    assert AffectedPackage.objects.get(vulnerability__osv_id="PYSEC-2023-1").name == "pillow"
    entries = AuditEntry.objects.filter(action="vulnerability_data.imported").order_by("seq")
    said = [json.loads(entry.changes) for entry in entries]
    assert [(changes["created"], changes["unchanged"]) for changes in said] == [(2, 0), (0, 2)]


def test_a_newer_record_replaces_the_stored_one_and_an_older_one_does_not(tmp_path):
    osv_imported(tmp_path, [osv_record(PYSEC_NUMPY, events=[{"introduced": "0"}, {"fixed": "1.22.0"}])])

    newer = osv_record(PYSEC_NUMPY, events=[{"introduced": "0"}, {"fixed": "1.23.0"}], modified="2025-01-01T00:00:00Z")
    said = osv_imported(tmp_path, [newer], "newer.zip")
    older = osv_record(PYSEC_NUMPY, events=[{"introduced": "0"}, {"fixed": "1.0"}], modified="2020-01-01T00:00:00Z")
    osv_imported(tmp_path, [older], "older.zip")

    assert "0 new, 1 updated" in said
    assert ids(vulnerabilities_for("PyPI", "numpy", "1.22.5")) == [PYSEC_NUMPY]
    assert AffectedPackage.objects.count() == 1


def test_entries_that_are_not_osv_records_are_skipped_and_counted_and_the_rest_imported(tmp_path):
    archive = osv_archive(
        tmp_path / "all.zip",
        [
            osv_record(PYSEC_NUMPY),
            {"id": "PYSEC-X", "affected": []},
            # Odd shapes where lists belong are read as empty, not fatal.
            {"id": "PYSEC-Y", "modified": "2024-01-01T00:00:00Z", "affected": 7, "aliases": "CVE-1"},
        ],
        extra={"broken.json": b"{not json", "README.txt": b"not a record"},
    )

    report = osv_import(archive=archive, batch_size=1)

    assert (report.created, report.skipped) == (2, 2)
    assert sorted(reason.split(":")[0] for reason in report.skip_reasons) == ["PYSEC-X.json", "broken.json"]
    assert list(Vulnerability.objects.values_list("osv_id", flat=True)) == [PYSEC_NUMPY, "PYSEC-Y"]


def test_a_file_that_is_no_zip_is_refused_with_nothing_written(tmp_path):
    path = tmp_path / "all.zip"
    path.write_text(json.dumps(osv_record(PYSEC_NUMPY)))

    with pytest.raises(CommandError, match=r"is not a zip archive: give the all\.zip osv\.dev publishes"):
        call_command("import_osv", str(path))
    assert not Vulnerability.objects.exists()
    assert not AuditEntry.objects.filter(action="vulnerability_data.imported").exists()


# Matching ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "affected"),
    [("1.9.0", False), ("2.0.0", True), ("2.1.3", True), ("2.1.4", False), ("2.2.0", False), ("3.0.0", True)],
)
def test_ranges_are_read_in_pep_440_order_fixed_exclusive_last_affected_inclusive(tmp_path, version, affected):
    osv_imported(
        tmp_path,
        [
            osv_record(
                "PYSEC-2024-2",
                events=[{"introduced": "2.0"}, {"last_affected": "2.1.3"}],
            ),
            osv_record("PYSEC-2024-3", events=[{"introduced": "3.0.0rc1"}, {"fixed": "3.0.1"}]),
        ],
    )

    assert bool(vulnerabilities_for("PyPI", "NumPy", version)) is affected


def test_explicit_versions_match_in_any_ecosystem_and_a_withdrawn_record_matches_nothing(tmp_path):
    osv_imported(
        tmp_path,
        [
            osv_record(
                "GHSA-aaaa-bbbb-cccc",
                ecosystem="npm",
                package="left-pad",
                events=[{"introduced": "0"}],
                versions=["1.1.0"],
            ),
            osv_record(
                "PYSEC-2020-9",
                package="scikit_learn",
                events=[{"introduced": "0"}, {"fixed": "1.0"}],
                withdrawn="2024-01-01T00:00:00Z",
            ),
        ],
    )

    assert ids(vulnerabilities_for("npm", "left-pad", "1.1.0")) == ["GHSA-aaaa-bbbb-cccc"]
    # npm's order is not PEP 440's: its ranges are not guessed at, only listed versions match.
    assert vulnerabilities_for("npm", "left-pad", "1.2.0") == []
    assert vulnerabilities_for("PyPI", "scikit-learn", "0.24.0") == []


def test_a_runs_requirements_are_read_as_pins_and_what_pins_no_version_is_set_apart():
    pins, unpinned = pins_parse(["NumPy==2.1.3", "pandas>=2", "torch===2.4.0", "requests==2.*", "not a req!", 7])

    assert [(pin.name, pin.version) for pin in pins] == [("numpy", "2.1.3"), ("torch", "2.4.0")]
    assert unpinned == ["pandas>=2", "requests==2.*", "not a req!", "7"]
