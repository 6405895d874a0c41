"""The demo that `make run` loads: a fraud-detection project with real data, real training and real lineage.

Two snapshots of synthetic card transactions, two training runs of a small logistic regression, and the
preprocessor, model and evaluation report they produced, all recorded through `artifacts.services` as a
pipeline would record them through the API. The story the runs tell (a repository, a commit, numpy in the
environment) is illustrative; the numbers are not: every file is computed here, in pure Python, from the
dataset bytes that are stored, and the metrics recorded on each run are the ones in its evaluation report.

Generation is deterministic (seeded `random.Random`, fixed timestamps, rounded floats), so the same files and
therefore the same digests come out on every load: publishing them again finds the existing versions.

(Over 600 lines on purpose: it is one story read top to bottom, data, features, training, then recording, and the
digests recorded at the end are the same on every load only if every step above is deterministic; kept whole, that
can be checked in one reading.)
"""

import csv
import hashlib
import io
import json
import math
import random
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import transaction

from artifacts import services
from artifacts.access.roles import Role
from artifacts.access.services import role_grant
from artifacts.models import Artifact, ArtifactVersion, Blob, DatasetVersion, Project, Run

PROJECT_SLUG = "fraud-detection"
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "provenant-demo"  # noqa: S105 (published on purpose: the demo runs only with DJANGO_DEBUG on)

# The project's team, each with the demo password: who publishes, who reviews, who audits, who only looks.
TEAM = {
    "dana": Role.CONTRIBUTOR,
    "rui": Role.REVIEWER,
    "ada": Role.AUDITOR,
}
VIEWER_GROUP = "fraud-analysts"
VIEWER_GROUP_MEMBERS = ("lena",)

CODE_REPOSITORY = "https://github.com/example-payments/fraud-detection"
ENVIRONMENT = {
    "python_version": "3.11.9",
    "dependencies": ["numpy==2.1.3", "pandas==2.2.3", "safetensors==0.4.5"],
    "hardware": {"machine": "n2-standard-4", "cpus": 4, "memory_gb": 16, "gpu": None},
}
THRESHOLD = 0.5
#: What the demo's files are published under (the license gate reads it; the ML-BOM names it).
LICENSE = "Apache-2.0"


# Synthetic transactions ------------------------------------------------------------------------------

SEED = 20261103
# Merchant category: share of transactions, fraud risk (added to the log-odds), typical amount multiplier.
MERCHANT_CATEGORIES = {
    "grocery": (0.27, -0.7, 1.0),
    "restaurants": (0.18, -0.5, 0.9),
    "fuel": (0.12, -0.4, 1.1),
    "retail": (0.17, 0.0, 1.3),
    "travel": (0.07, 0.4, 3.0),
    "electronics": (0.09, 1.0, 2.5),
    "online_gaming": (0.06, 1.3, 0.8),
    "jewelry": (0.04, 1.2, 3.5),
}
HIGH_RISK_MERCHANTS = ("electronics", "jewelry", "online_gaming")
# Relative number of transactions in each hour of the day, quiet at night.
HOUR_WEIGHTS = (1, 1, 1, 1, 1, 1, 2, 4, 6, 7, 8, 9, 10, 10, 9, 9, 9, 10, 10, 9, 7, 5, 3, 2)
COLUMNS = (
    ("transaction_id", "string", "Unique id of the card transaction."),
    ("amount", "float", "Amount in EUR, two decimals."),
    ("merchant_category", "string", "One of: " + ", ".join(MERCHANT_CATEGORIES) + "."),
    ("hour", "int", "Local hour of day, 0-23."),
    ("country_mismatch", "int", "1 when the merchant's country differs from the card's."),
    ("card_age_days", "int", "Days since the card was issued."),
    ("is_fraud", "int", "Label: 1 when the transaction was charged back as fraud."),
)


class Transaction(NamedTuple):
    transaction_id: str
    amount: float
    merchant_category: str
    hour: int
    country_mismatch: int
    card_age_days: int
    is_fraud: int


def generate_transactions(count: int, *, seed: int = SEED) -> list[Transaction]:
    """`count` plausible card transactions; the first n of a longer list are the n-row list (one stream)."""
    rng = random.Random(seed)
    categories = list(MERCHANT_CATEGORIES)
    shares = [MERCHANT_CATEGORIES[name][0] for name in categories]
    transactions = []
    for index in range(count):
        category = rng.choices(categories, shares)[0]
        _, risk, amount_scale = MERCHANT_CATEGORIES[category]
        amount = round(min(rng.lognormvariate(3.4, 0.85) * amount_scale, 5000.0), 2)
        hour = rng.choices(range(24), HOUR_WEIGHTS)[0]
        country_mismatch = int(rng.random() < 0.07)
        card_age_days = min(int(rng.expovariate(1 / 700)) + 1, 3650)
        # Fraud follows the features, with noise: large amounts, foreign merchants, night hours, risky
        # categories and new cards raise the odds. The intercept puts the overall rate near 4%.
        log_odds = (
            -5.4
            + 1.1 * (math.log1p(amount) - 3.6)
            + 3.2 * country_mismatch
            + 1.9 * (hour < 6)
            + 1.5 * risk
            - 0.9 * (math.log1p(card_age_days) - 6.0)
        )
        is_fraud = int(rng.random() < _sigmoid(log_odds))
        transactions.append(
            Transaction(f"tx-{index + 1:06d}", amount, category, hour, country_mismatch, card_age_days, is_fraud)
        )
    return transactions


def transactions_csv(transactions: Sequence[Transaction]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(Transaction._fields)
    for tx in transactions:
        writer.writerow([tx.transaction_id, f"{tx.amount:.2f}", *tx[2:]])
    return buffer.getvalue().encode()


def read_transactions_csv(data: bytes) -> list[Transaction]:
    rows = csv.DictReader(io.StringIO(data.decode()))
    return [
        Transaction(
            row["transaction_id"],
            float(row["amount"]),
            row["merchant_category"],
            int(row["hour"]),
            int(row["country_mismatch"]),
            int(row["card_age_days"]),
            int(row["is_fraud"]),
        )
        for row in rows
    ]


def dataset_schema(transactions: Sequence[Transaction]) -> dict[str, Any]:
    frauds = sum(tx.is_fraud for tx in transactions)
    return {
        "format": "csv",
        "header": True,
        "columns": [{"name": name, "type": kind, "description": text} for name, kind, text in COLUMNS],
        "label": "is_fraud",
        "fraud_count": frauds,
        "fraud_rate": round(frauds / len(transactions), 4),
    }


def split(transactions: Sequence[Transaction]) -> tuple[list[Transaction], list[Transaction]]:
    """Train and held-out test rows: every fifth transaction is held out, so a longer snapshot keeps the
    shorter one's test rows in its own test set."""
    train = [tx for index, tx in enumerate(transactions) if index % 5]
    test = [tx for index, tx in enumerate(transactions) if not index % 5]
    return train, test


# Features and the preprocessor -----------------------------------------------------------------------

FEATURES = ("log_amount", "night", "country_mismatch", "log_card_age_days", "high_risk_merchant")
FEATURE_DEFINITIONS = {
    "log_amount": "ln(1 + amount)",
    "night": "1 if hour < 6 else 0",
    "country_mismatch": "country_mismatch",
    "log_card_age_days": "ln(1 + card_age_days)",
    "high_risk_merchant": "1 if merchant_category in " + ", ".join(HIGH_RISK_MERCHANTS) + " else 0",
}


def features_of(tx: Transaction) -> list[float]:
    return [
        math.log1p(tx.amount),
        float(tx.hour < 6),
        float(tx.country_mismatch),
        math.log1p(tx.card_age_days),
        float(tx.merchant_category in HIGH_RISK_MERCHANTS),
    ]


@dataclass(frozen=True)
class Standardizer:
    """Per-feature mean and standard deviation; the preprocessor artifact is this, as JSON."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, rows: Sequence[Sequence[float]]) -> "Standardizer":
        """Fit on `rows` of features. The numbers are rounded before use, so the model is trained with exactly
        those the preprocessor file holds; a constant feature gets std 1 rather than a division by zero."""
        columns = list(zip(*rows, strict=True))
        mean = [sum(column) / len(column) for column in columns]
        std = [
            math.sqrt(sum((x - m) ** 2 for x in column) / len(column)) for column, m in zip(columns, mean, strict=True)
        ]
        return cls(tuple(round(m, 6) for m in mean), tuple(round(s, 6) or 1.0 for s in std))

    def transform(self, row: Sequence[float]) -> list[float]:
        return [(x - m) / s for x, m, s in zip(row, self.mean, self.std, strict=True)]

    def to_json(self, *, fitted_on: str) -> bytes:
        document = {
            "type": "standardizer",
            "transform": "(feature - mean) / std",
            "fitted_on": fitted_on,
            "features": [
                {"name": name, "definition": FEATURE_DEFINITIONS[name], "mean": m, "std": s}
                for name, m, s in zip(FEATURES, self.mean, self.std, strict=True)
            ],
        }
        return _json_bytes(document)

    @classmethod
    def from_json(cls, data: bytes) -> "Standardizer":
        features = json.loads(data)["features"]
        if [feature["name"] for feature in features] != list(FEATURES):
            raise ValueError("The preprocessor was fitted for other features.")
        return cls(tuple(f["mean"] for f in features), tuple(f["std"] for f in features))


# The model -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingParameters:
    learning_rate: float
    epochs: int
    l2: float
    seed: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": "logistic_regression",
            "optimizer": "sgd",
            "batch_size": 1,
            "learning_rate": self.learning_rate,
            "epochs": self.epochs,
            "l2": self.l2,
            "seed": self.seed,
            "threshold": THRESHOLD,
            "features": list(FEATURES),
            "test_split": "every 5th row held out",
        }


@dataclass(frozen=True)
class TrainingResult:
    standardizer: Standardizer
    model: bytes
    report: bytes
    metrics: dict[str, float]


def train(dataset: bytes, *, parameters: TrainingParameters, standardizer: Standardizer | None) -> TrainingResult:
    """Train on the dataset file's train rows and evaluate on its held-out rows.

    Without a `standardizer` one is fitted on the train rows; with one (a consumed preprocessor) it is reused.
    """
    train_rows, test_rows = split(read_transactions_csv(dataset))
    raw = [features_of(tx) for tx in train_rows]
    standardizer = standardizer or Standardizer.fit(raw)
    x_train = [standardizer.transform(row) for row in raw]
    y_train = [tx.is_fraud for tx in train_rows]
    weights, bias = _fit_logistic_regression(x_train, y_train, parameters)
    # Evaluate the float32 numbers the model file holds, not the float64 ones they were trained as.
    weights, bias = _as_float32(weights), _as_float32([bias])[0]
    x_test = [standardizer.transform(features_of(tx)) for tx in test_rows]
    y_test = [tx.is_fraud for tx in test_rows]
    evaluation = _evaluate(weights, bias, x_test, y_test)
    metrics = {
        **evaluation["metrics"],
        "train_log_loss": round(_log_loss([_predict(weights, bias, x) for x in x_train], y_train), 4),
    }
    model = safetensors_bytes(
        {"weight": ([1, len(FEATURES)], weights), "bias": ([1], [bias])},
        metadata={"features": ",".join(FEATURES), "threshold": str(THRESHOLD), "preprocessing": "standardizer"},
    )
    report = _json_bytes(
        {
            "model_digest": "sha256:" + hashlib.sha256(model).hexdigest(),
            "dataset_digest": "sha256:" + hashlib.sha256(dataset).hexdigest(),
            "split": {"rule": "every 5th row held out", "train_rows": len(train_rows), "test_rows": len(test_rows)},
            "threshold": THRESHOLD,
            "metrics": metrics,
            "confusion_matrix": evaluation["confusion_matrix"],
        }
    )
    return TrainingResult(standardizer=standardizer, model=model, report=report, metrics=metrics)


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    exp_z = math.exp(z)
    return exp_z / (1.0 + exp_z)


def _predict(weights: Sequence[float], bias: float, x: Sequence[float]) -> float:
    return _sigmoid(bias + sum(w * v for w, v in zip(weights, x, strict=True)))


def _fit_logistic_regression(
    x: Sequence[Sequence[float]], y: Sequence[int], parameters: TrainingParameters
) -> tuple[list[float], float]:
    """Stochastic gradient descent on the L2-regularised log loss, one example at a time, shuffled per epoch."""
    rng = random.Random(parameters.seed)
    weights = [0.0] * len(x[0])
    bias = 0.0
    order = list(range(len(x)))
    for _ in range(parameters.epochs):
        rng.shuffle(order)
        for i in order:
            error = _predict(weights, bias, x[i]) - y[i]
            for j, value in enumerate(x[i]):
                weights[j] -= parameters.learning_rate * (error * value + parameters.l2 * weights[j])
            bias -= parameters.learning_rate * error
    return weights, bias


def _as_float32(values: Sequence[float]) -> list[float]:
    return list(struct.unpack(f"<{len(values)}f", struct.pack(f"<{len(values)}f", *values)))


def _log_loss(probabilities: Sequence[float], labels: Sequence[int]) -> float:
    eps = 1e-12
    return -sum(
        math.log(max(p, eps)) if label else math.log(max(1 - p, eps))
        for p, label in zip(probabilities, labels, strict=True)
    ) / len(labels)


def _auc(probabilities: Sequence[float], labels: Sequence[int]) -> float:
    """Area under the ROC curve: the chance a fraud scores above a legitimate transaction (ties count half)."""
    positives = [p for p, label in zip(probabilities, labels, strict=True) if label]
    negatives = [p for p, label in zip(probabilities, labels, strict=True) if not label]
    if not positives or not negatives:
        return 0.5
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def _evaluate(weights: Sequence[float], bias: float, x: Sequence[Sequence[float]], y: Sequence[int]) -> dict:
    probabilities = [_predict(weights, bias, row) for row in x]
    predicted = [int(p >= THRESHOLD) for p in probabilities]
    tp = sum(1 for p, label in zip(predicted, y, strict=True) if p and label)
    fp = sum(1 for p, label in zip(predicted, y, strict=True) if p and not label)
    fn = sum(1 for p, label in zip(predicted, y, strict=True) if not p and label)
    tn = len(y) - tp - fp - fn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    metrics = {
        "accuracy": (tp + tn) / len(y),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "auc": _auc(probabilities, y),
        "log_loss": _log_loss(probabilities, y),
    }
    return {
        "metrics": {name: round(value, 4) for name, value in metrics.items()},
        "confusion_matrix": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
    }


def safetensors_bytes(
    tensors: Mapping[str, tuple[list[int], Sequence[float]]], *, metadata: Mapping[str, str]
) -> bytes:
    """A safetensors file of float32 tensors: an 8-byte little-endian header length, the JSON header, the data."""
    header: dict[str, Any] = {"__metadata__": dict(metadata)}
    data = bytearray()
    for name, (shape, values) in tensors.items():
        if math.prod(shape) != len(values):
            raise ValueError(f"Tensor {name} has {len(values)} values, not the {math.prod(shape)} its shape holds.")
        start = len(data)
        data += struct.pack(f"<{len(values)}f", *values)
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [start, len(data)]}
    encoded = json.dumps(header, separators=(",", ":")).encode()
    # Pad with spaces (allowed by the format) so the tensor data starts 8-byte aligned, as the reference writer does.
    encoded += b" " * (-len(encoded) % 8)
    return struct.pack("<Q", len(encoded)) + encoded + bytes(data)


def _json_bytes(document: Mapping[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


# Recording the demo ----------------------------------------------------------------------------------

RUN_A = "train-2026-11-03-a"
RUN_B = "train-2026-11-03-b"
PARAMETERS_A = TrainingParameters(learning_rate=0.05, epochs=5, l2=0.001, seed=1)
PARAMETERS_B = TrainingParameters(learning_rate=0.02, epochs=8, l2=0.001, seed=1)


@dataclass(frozen=True)
class DemoOutcome:
    loaded: bool  # False when the project was already there and nothing was written.
    admin_created: bool
    admin_has_demo_password: bool
    project: Project
    runs: list[Run]
    blobs_verified: int
    blobs_total: int


def load_demo() -> DemoOutcome:
    """Create the demo admin if missing, then the demo project with its data, runs and artifacts unless the
    project already exists. Safe to call any number of times."""
    admin, admin_created = _demo_admin()
    # One transaction: a load that fails half-way leaves no project behind, so the next call starts over
    # instead of mistaking a half-loaded project for the demo. Blob bytes written before the failure stay in
    # storage, but they are the same bytes (and keys) the next load writes. Verification of the new blobs is
    # queued on commit, so it runs (in-process without a broker) once everything is recorded.
    with transaction.atomic():
        project = Project.objects.filter(slug=PROJECT_SLUG).first()
        loaded = project is None
        if loaded:
            project = _record_demo(admin)
    blobs = Blob.objects.filter(project_links__project=project)
    return DemoOutcome(
        loaded=loaded,
        admin_created=admin_created,
        admin_has_demo_password=admin_created or check_password(ADMIN_PASSWORD, admin.password),
        project=project,
        runs=list(project.runs.order_by("external_id")),
        blobs_verified=blobs.filter(state=Blob.State.VERIFIED).count(),
        blobs_total=blobs.count(),
    )


def _demo_admin() -> tuple[AbstractBaseUser, bool]:
    user_model = get_user_model()
    admin = user_model.objects.filter(username=ADMIN_USERNAME).first()
    if admin is not None:
        return admin, False
    admin = user_model.objects.create_superuser(
        username=ADMIN_USERNAME, email="admin@example.com", password=ADMIN_PASSWORD
    )
    return admin, True


def _record_demo(admin: AbstractBaseUser) -> Project:
    project = services.project_create(
        created_by=admin,
        slug=PROJECT_SLUG,
        name="Fraud detection",
        description=(
            "Scores card transactions for fraud before authorisation. Daily snapshots of labelled transactions "
            "train a logistic regression; each run publishes the preprocessor it fitted (or consumed), the model "
            "as safetensors and an evaluation report on held-out transactions. Demo data: the transactions are "
            "synthetic and the models were trained by `manage.py load_demo`."
        ),
    )
    transactions = generate_transactions(2500)
    dataset = services.dataset_create(
        project=project,
        name="card-transactions",
        description="Labelled card transactions exported nightly from the payments ledger, one CSV per snapshot.",
    )
    snapshots = []
    for rows, description in (
        (transactions[:2000], "Transactions of 1-21 October 2026, labels as of 2 November."),
        (transactions, "Adds the transactions of 22-28 October 2026 to v1."),
    ):
        data = transactions_csv(rows)
        version, _ = services.dataset_version_create(
            dataset=dataset,
            created_by=admin,
            digest=_upload(project, admin, data),
            row_count=len(rows),
            schema=dataset_schema(rows),
            description=description,
        )
        snapshots.append((version, data))
    (dataset_v1, csv_v1), (dataset_v2, csv_v2) = snapshots

    preprocessor = services.artifact_create(
        created_by=admin,
        project=project,
        name="preprocessor",
        kind=Artifact.Kind.PREPROCESSOR,
        description="Feature definitions and the standardisation (mean, std per feature) fitted on training rows.",
    )
    model = services.artifact_create(
        created_by=admin,
        project=project,
        name="model",
        kind=Artifact.Kind.MODEL,
        description="Logistic regression scoring the fraud probability of a standardised transaction.",
    )
    report = services.artifact_create(
        created_by=admin,
        project=project,
        name="evaluation-report",
        kind=Artifact.Kind.EVALUATION_REPORT,
        description="Metrics of the model on the held-out transactions of the snapshot it was trained on.",
    )

    result_a = train(csv_v1, parameters=PARAMETERS_A, standardizer=None)
    run_a = _start_run(
        project,
        admin,
        external_id=RUN_A,
        name="Baseline on the October 1-21 snapshot",
        commit=hashlib.sha1(b"fraud-detection: baseline logistic regression").hexdigest(),  # noqa: S324
        parameters=PARAMETERS_A,
        started_at="2026-11-03T09:12:04",
        input_dataset_versions=[dataset_v1],
    )
    preprocessor_data = result_a.standardizer.to_json(fitted_on=f"{dataset_v1} train rows")
    preprocessor_v1 = _publish(
        preprocessor, admin, preprocessor_data, run=run_a, media_type="application/json", filename="preprocessor.json"
    )
    _publish_model_and_report(model, report, admin, result_a, run=run_a)
    _finish_run(run_a, result_a, ended_at="2026-11-03T09:14:51")

    # Run B retrains on the longer snapshot with run A's preprocessor, read back from the file A published.
    result_b = train(csv_v2, parameters=PARAMETERS_B, standardizer=Standardizer.from_json(preprocessor_data))
    run_b = _start_run(
        project,
        admin,
        external_id=RUN_B,
        name="Retrain on the October 1-28 snapshot, preprocessor from run A",
        commit=hashlib.sha1(b"fraud-detection: lower learning rate, more epochs").hexdigest(),  # noqa: S324
        parameters=PARAMETERS_B,
        started_at="2026-11-03T16:40:10",
        input_dataset_versions=[dataset_v2],
        input_artifact_versions=[preprocessor_v1],
    )
    _publish_model_and_report(model, report, admin, result_b, run=run_b)
    _finish_run(run_b, result_b, ended_at="2026-11-03T16:43:37")
    _record_team(project, admin)
    return project


def _record_team(project: Project, admin: AbstractBaseUser) -> None:
    """Members with each role (and a group of viewers), so every permission has someone to show it."""
    user_model = get_user_model()
    for username, role in TEAM.items():
        member = user_model.objects.filter(username=username).first() or user_model.objects.create_user(
            username=username, email=f"{username}@example.com", password=ADMIN_PASSWORD
        )
        role_grant(obj=project, role=role, user=member, granted_by=admin)
    analysts, _ = Group.objects.get_or_create(name=VIEWER_GROUP)
    for username in VIEWER_GROUP_MEMBERS:
        member = user_model.objects.filter(username=username).first() or user_model.objects.create_user(
            username=username, email=f"{username}@example.com", password=ADMIN_PASSWORD
        )
        member.groups.add(analysts)
    role_grant(obj=project, role=Role.VIEWER, group=analysts, granted_by=admin)


def _upload(project: Project, admin: AbstractBaseUser, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    services.blob_store(
        project=project, stream=io.BytesIO(data), expected_digest=digest, uploaded_by=admin, declared_length=len(data)
    )
    return digest


def _publish(
    artifact: Artifact,
    admin: AbstractBaseUser,
    data: bytes,
    *,
    run: Run,
    media_type: str,
    filename: str,
    metadata: Mapping[str, Any] | None = None,
) -> ArtifactVersion:
    version, _ = services.artifact_version_publish(
        artifact=artifact,
        digest=_upload(artifact.project, admin, data),
        created_by=admin,
        run=run,
        media_type=media_type,
        metadata={"filename": filename, **(metadata or {})},
        license=LICENSE,
    )
    return version


def _publish_model_and_report(
    model: Artifact, report: Artifact, admin: AbstractBaseUser, result: TrainingResult, *, run: Run
) -> None:
    _publish(
        model,
        admin,
        result.model,
        run=run,
        media_type="application/octet-stream",
        filename="model.safetensors",
        metadata={
            "framework": "numpy",
            "format": "safetensors",
            "architecture": "logistic_regression",
            "features": list(FEATURES),
            "threshold": THRESHOLD,
            "tensors": {"weight": [1, len(FEATURES)], "bias": [1]},
        },
    )
    _publish(report, admin, result.report, run=run, media_type="application/json", filename="evaluation.json")


def _start_run(
    project: Project,
    admin: AbstractBaseUser,
    *,
    external_id: str,
    name: str,
    commit: str,
    parameters: TrainingParameters,
    started_at: str,
    input_dataset_versions: Sequence[DatasetVersion],
    input_artifact_versions: Sequence[ArtifactVersion] = (),
) -> Run:
    return services.run_create(
        project=project,
        external_id=external_id,
        created_by=admin,
        name=name,
        code_repository=CODE_REPOSITORY,
        code_commit=commit,
        entry_point="python -m fraud.train",
        parameters=parameters.as_dict(),
        environment=ENVIRONMENT,
        started_at=_utc(started_at),
        input_dataset_versions=input_dataset_versions,
        input_artifact_versions=input_artifact_versions,
    )


def _finish_run(run: Run, result: TrainingResult, *, ended_at: str) -> Run:
    # Metrics go in with the status change: once completed, the run is frozen.
    return services.run_update(run=run, status=Run.Status.COMPLETED, metrics=result.metrics, ended_at=_utc(ended_at))


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
