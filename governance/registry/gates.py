"""The gates a model version must pass before approvals of its promotion count, judged against one policy.

Each gate answers pass or fail with a sentence a reviewer can act on. Gates are judged when a request is made (so
the requester sees at once what is missing) and again at the moment of promotion, because bytes can be found
corrupt and a production version can change in between.
"""

import math
import operator
from collections.abc import Callable
from datetime import datetime, timedelta

from core.errors import InvalidInput
from core.licenses import license_disallowed
from governance.supplychain.models import BlobScan
from governance.supplychain.selectors.scans import blob_scan_current
from governance.supplychain.selectors.signatures import version_trusted_signatures
from governance.supplychain.selectors.vulnerabilities import PYPI, pins_parse, vulnerability_data_held, vulnerable_pins

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}
MAX_THRESHOLDS = 50


def _finite(number: int | float) -> bool:
    """A number a float holds (an integer of 400 digits is not; math.isfinite would raise on it)."""
    try:
        return math.isfinite(float(number))
    except OverflowError:
        return False


def metric_thresholds_clean(value: object) -> list[dict]:
    """A policy's metric thresholds in their one stored shape, or InvalidInput naming the first fault."""
    if not isinstance(value, list):
        raise InvalidInput(
            'Metric thresholds are a list like [{"metric": "accuracy", "operator": ">=", "value": 0.92}].',
            field="metric_thresholds",
        )
    if len(value) > MAX_THRESHOLDS:
        raise InvalidInput(f"At most {MAX_THRESHOLDS} metric thresholds.", field="metric_thresholds")
    cleaned, seen = [], set()
    for position, item in enumerate(value, start=1):
        where = f"Threshold {position}"
        if not isinstance(item, dict) or set(item) != {"metric", "operator", "value"}:
            raise InvalidInput(
                f'{where} must have exactly "metric", "operator" and "value".', field="metric_thresholds"
            )
        metric, op, bound = item["metric"], item["operator"], item["value"]
        if not isinstance(metric, str) or not metric.strip() or len(metric) > 200 or "\x00" in metric:
            raise InvalidInput(
                f"{where}: the metric is a name of 1-200 characters, without NUL.", field="metric_thresholds"
            )
        # A list or an object is no operator (and, unhashable, cannot even be looked up among them).
        if not isinstance(op, str) or op not in OPERATORS:
            raise InvalidInput(
                f"{where}: the operator is one of {', '.join(OPERATORS)}, not {op!r}.", field="metric_thresholds"
            )
        if isinstance(bound, bool) or not isinstance(bound, int | float) or not _finite(bound):
            raise InvalidInput(f"{where}: the value must be a finite number.", field="metric_thresholds")
        if (metric, op) in seen:
            raise InvalidInput(f"{where} repeats '{metric} {op}'.", field="metric_thresholds")
        seen.add((metric, op))
        cleaned.append({"metric": metric, "operator": op, "value": bound})
    return cleaned


#: Which way a threshold's operator says a metric should move: a floor (>=, >) means higher is better, a ceiling
#: (<=, <) lower is better; an exact value (==) says neither.
IMPROVES_WHEN = {">=": "higher", ">": "higher", "<=": "lower", "<": "lower"}


def metric_directions(thresholds: list[dict]) -> dict[str, str]:
    """For each metric a policy holds to a floor or a ceiling, whether `higher` or `lower` is better, so a page can
    say whether a change is an improvement. A metric held between a floor and a ceiling (a band) has no direction."""
    found: dict[str, set[str]] = {}
    for threshold in thresholds:
        if direction := IMPROVES_WHEN.get(threshold["operator"]):
            found.setdefault(threshold["metric"], set()).add(direction)
    return {metric: directions.pop() for metric, directions in found.items() if len(directions) == 1}


DIRECTIONS = ("higher", "lower")


def declared_directions_clean(value: object) -> dict[str, str]:
    """A model's declared metric directions in their stored shape, or InvalidInput naming the first fault."""
    field = "metric_directions"
    if not isinstance(value, dict):
        raise InvalidInput(
            'Metric directions are an object like {"auc": "higher", "latency_ms": "lower"}.', field=field
        )
    if len(value) > MAX_THRESHOLDS:
        raise InvalidInput(f"At most {MAX_THRESHOLDS} metric directions.", field=field)
    for metric, direction in value.items():
        if not isinstance(metric, str) or not metric.strip() or len(metric) > 200 or "\x00" in metric:
            raise InvalidInput("A metric is a name of 1-200 characters, without NUL.", field=field)
        if direction not in DIRECTIONS:
            raise InvalidInput(
                f"The direction of '{metric}' is 'higher' or 'lower' (which way is better), not {direction!r}.",
                field=field,
            )
    return dict(sorted(value.items()))


def _result(gate: str, passed: bool, detail: str) -> dict:
    return {"gate": gate, "passed": passed, "detail": detail}


def _integrity(version) -> dict:
    blob = version.artifact_version.blob
    if blob.state == "verified":
        return _result(
            "integrity", True, f"{blob.prefixed_digest} was verified at {blob.verified_at:%Y-%m-%d %H:%M} UTC."
        )
    if blob.state == "corrupt":
        return _result(
            "integrity",
            False,
            f"{blob.prefixed_digest} is corrupt: the stored bytes no longer match their digest. Upload the same bytes "
            "again to repair it.",
        )
    return _result(
        "integrity",
        False,
        f"{blob.prefixed_digest} is not verified yet: a worker re-hashes new bytes shortly after upload. Try again "
        "once it is verified.",
    )


def _lineage(version) -> dict:
    run = version.artifact_version.run
    if run is None:
        return _result("lineage", False, "The artifact version names no producing run: publish it with its run.")
    missing = []
    if not run.code_commit:
        missing.append("code commit")
    if not run.input_dataset_versions.exists():
        missing.append("input dataset version")
    if missing:
        return _result("lineage", False, f"Run '{run.external_id}' records no {' and no '.join(missing)}.")
    return _result(
        "lineage", True, f"Run '{run.external_id}' at commit {run.code_commit[:12]} with its input datasets."
    )


def _metrics(version, thresholds: list[dict]) -> dict:
    run = version.artifact_version.run
    if run is None:
        return _result("metrics", False, "No producing run, so no metrics to hold to the thresholds.")
    failures, passes = [], []
    for threshold in thresholds:
        metric, op, bound = threshold["metric"], threshold["operator"], threshold["value"]
        actual = run.metrics.get(metric)
        if actual is None:
            failures.append(f"{metric} is missing from run '{run.external_id}' (needs {op} {bound})")
        elif OPERATORS[op](actual, bound):
            passes.append(f"{metric} = {actual} ({op} {bound})")
        else:
            failures.append(f"{metric} is {actual}, needs {op} {bound}")
    if failures:
        return _result("metrics", False, "; ".join(failures) + ".")
    return _result("metrics", True, "; ".join(passes) + ".")


def _model_card(version) -> dict:
    if version.registered_model.model_card.strip():
        return _result("model_card", True, "The model card is written.")
    return _result("model_card", False, f"Model '{version.registered_model.name}' has no model card: write one.")


def _license(version, allowed: list[str]) -> dict:
    declared = version.artifact_version.license
    listed = ", ".join(allowed)
    if not declared:
        return _result(
            "license",
            False,
            f"{version.artifact_version} declares no license: publish the bytes again with their SPDX license "
            f"(the policy allows {listed}).",
        )
    refused = license_disallowed(declared, allowed)
    if refused is None:
        return _result("license", True, f"'{declared}' is satisfied by the allowed licenses ({listed}).")
    return _result(
        "license",
        False,
        f"'{declared}' is not satisfied by the allowed licenses ({listed}): {', '.join(refused)} "
        f"{'is' if len(refused) == 1 else 'are'} not allowed.",
    )


def _vulnerable_dependencies(version) -> dict:
    run = version.artifact_version.run
    if run is None:
        return _result(
            "vulnerable_dependencies",
            False,
            "No producing run, so no recorded environment to check for vulnerable dependencies.",
        )
    requirements = run.environment.get("dependencies") if isinstance(run.environment, dict) else None
    if not isinstance(requirements, list) or not requirements:
        return _result(
            "vulnerable_dependencies",
            False,
            f"Run '{run.external_id}' records no dependencies (environment.dependencies, e.g. \"numpy==2.1.3\"): "
            "nothing to check against the vulnerability data.",
        )
    if not vulnerability_data_held(PYPI):
        return _result(
            "vulnerable_dependencies",
            False,
            "No OSV data for PyPI is imported, so no dependency can be judged: an operator runs "
            "`manage.py import_osv PyPI-all.zip` (https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip).",
        )
    pins, unpinned = pins_parse(requirements)
    found = vulnerable_pins(PYPI, pins)
    unchecked = f" {len(unpinned)} unpinned requirement(s) could not be checked." if unpinned else ""
    if found:
        named: dict[str, list[str]] = {}
        for pin, vulnerability in found:
            named.setdefault(f"{pin.name}=={pin.version}", []).append(vulnerability.osv_id)
        listed = "; ".join(f"{pin} is affected by {', '.join(ids)}" for pin, ids in named.items())
        return _result(
            "vulnerable_dependencies",
            False,
            f"Run '{run.external_id}': {listed}. Retrain with fixed versions and register the new version.{unchecked}",
        )
    return _result(
        "vulnerable_dependencies",
        True,
        f"None of the {len(pins)} pinned dependencies of run '{run.external_id}' is affected by a vulnerability in "
        f"the imported PyPI OSV data.{unchecked}",
    )


#: The formats a policy may allow, as the scan detects them from the bytes (not the file name).
FORMATS = tuple(value for value in BlobScan.Format.values if value != BlobScan.Format.UNKNOWN)
#: Verdicts the format-scan gate lets through: nothing found, or no model format to scan (a CSV, a report).
SCAN_PASSES = (BlobScan.Verdict.CLEAN, BlobScan.Verdict.NOT_APPLICABLE)


def allowed_formats_clean(value: object) -> list[str]:
    """A policy's format allowlist in its stored shape (sorted, no repeats), or InvalidInput naming the fault."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidInput('Allowed formats are a list like ["safetensors", "onnx"].', field="allowed_formats")
    if unknown := sorted(set(value) - set(FORMATS)):
        raise InvalidInput(
            f"Unknown format {', '.join(map(repr, unknown))}: the formats are {', '.join(FORMATS)}.",
            field="allowed_formats",
        )
    return sorted(set(value))


def _not_scanned(gate: str, version) -> dict:
    return _result(
        gate,
        False,
        f"{version.artifact_version.blob.prefixed_digest} is not scanned yet: a worker scans the bytes once they are "
        "verified. Try again then.",
    )


def _format_scan(version) -> dict:
    scan = blob_scan_current(version.artifact_version.blob)
    if scan is None:
        return _not_scanned("format_scan", version)
    what = f"{scan.get_detected_format_display()}, scanned by {scan.scanner} {scan.scanner_version}"
    if scan.verdict in SCAN_PASSES:
        return _result("format_scan", True, f"No unsafe finding ({what}).")
    if scan.verdict == BlobScan.Verdict.ERROR:
        return _result("format_scan", False, f"The scan could not check the whole file ({what}); nothing is proved.")
    findings = "; ".join(
        " ".join(
            str(part)
            for part in (finding.get("detail"), f"in {finding['member']}" if finding.get("member") else "")
            if part
        )
        for finding in scan.findings[:3]
    )
    more = f" (and {len(scan.findings) - 3} more)" if len(scan.findings) > 3 else ""
    return _result(
        "format_scan",
        False,
        f"{scan.get_verdict_display()} ({what}): {findings}{more}. Publish the weights in a format that runs no code "
        "on loading, such as safetensors.",
    )


def _format_allowed(version, allowed: list[str]) -> dict:
    listed = ", ".join(allowed)
    scan = blob_scan_current(version.artifact_version.blob)
    if scan is None:
        return _not_scanned("format_allowed", version)
    if scan.detected_format in allowed:
        return _result("format_allowed", True, f"{scan.get_detected_format_display()} is allowed here ({listed}).")
    return _result(
        "format_allowed",
        False,
        f"The bytes are {scan.get_detected_format_display()} (detected from their content), which this stage does not "
        f"accept: it allows {listed}.",
    )


def _trusted_signature(version) -> dict:
    signatures = version_trusted_signatures(version.artifact_version)
    if signatures:
        keys = ", ".join(sorted({f"'{signature.trusted_key.name}'" for signature in signatures}))
        return _result("trusted_signature", True, f"Signed, and verified against the bytes, by trusted key {keys}.")
    return _result(
        "trusted_signature",
        False,
        f"{version.artifact_version} carries no signature verified by a key its project trusts: sign the file "
        "(`provenant push --sign-key`, or model_signing) and attach the bundle, or have a maintainer trust the key.",
    )


def _production_age(current, hours: int, now: datetime) -> dict:
    if current is None or current.stage_changed_at is None:
        return _result("production_age", True, "No version is in production now.")
    served = (now - current.stage_changed_at).total_seconds() / 3600
    if served >= hours:
        return _result("production_age", True, f"v{current.number} has served {served:.1f} h (at least {hours} h).")
    return _result(
        "production_age",
        False,
        f"v{current.number} entered production {served:.1f} h ago; the policy keeps a production version at least "
        f"{hours} h before replacing it (no flapping): try again after "
        f"{(current.stage_changed_at + timedelta(hours=hours)):%Y-%m-%d %H:%M} UTC.",
    )


def gates_evaluate(policy, version, *, current_production, now: datetime) -> list[dict]:
    """Every gate `policy` turns on, judged for `version` (with its artifact version, blob, run and model loaded).

    `current_production` is the model's production version now (None if there is none, or if it is `version`).
    """
    results = []
    if policy.require_verified_blob:
        results.append(_integrity(version))
    if policy.require_complete_lineage:
        results.append(_lineage(version))
    if policy.metric_thresholds:
        results.append(_metrics(version, policy.metric_thresholds))
    if policy.require_model_card:
        results.append(_model_card(version))
    if policy.allowed_licenses:
        results.append(_license(version, policy.allowed_licenses))
    if policy.block_vulnerable_dependencies:
        results.append(_vulnerable_dependencies(version))
    if policy.block_unsafe_formats:
        results.append(_format_scan(version))
    if policy.allowed_formats:
        results.append(_format_allowed(version, policy.allowed_formats))
    if policy.require_trusted_signature:
        results.append(_trusted_signature(version))
    if policy.stage == "production" and policy.min_hours_in_production:
        results.append(_production_age(current_production, policy.min_hours_in_production, now))
    return results


def gates_pass(results: list[dict]) -> bool:
    return all(result["passed"] for result in results)


def gates_failing(results: list[dict]) -> str:
    """The failing gates' reasons, as one sentence per gate."""
    return " ".join(f"{result['gate']}: {result['detail']}" for result in results if not result["passed"])
