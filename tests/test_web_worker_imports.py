"""What a web worker imports: every page and endpoint's code, and not the large libraries only some of them need.

A web worker's resting memory is mostly the code it has imported (benchmarks/README.md, "Where the memory goes"), and
it must stay under 150 MB through large uploads. boto3 (~11 MiB) is needed only when blobs are in S3, and numpy
(~13 MiB, loaded by grandalf) only to draw a lineage picture; both used to be loaded by every worker.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from django.core.files.storage import FileSystemStorage
from storages.backends.s3 import S3Storage

from artifacts.storage import is_s3

REPO = Path(__file__).resolve().parent.parent

#: In a fresh interpreter, as config.wsgi starts a worker: the app, every URLconf and view, and the sink an upload to
#: the local blob folder writes with; then which of the large libraries got loaded.
WORKER = """
import json, sys
from config.wsgi import application
from django.urls import get_resolver
from artifacts.storage.writes import writing_sink

get_resolver().reverse_dict  # imports every URLconf and view module
loaded = sorted(name for name in ("boto3", "numpy", "grandalf") if name in sys.modules)
print(json.dumps({"sink": type(writing_sink()).__name__, "loaded": loaded}))
"""


def test_a_worker_storing_blobs_on_disk_loads_neither_boto3_nor_numpy():
    env = os.environ | {"DJANGO_SETTINGS_MODULE": "tests.settings"}
    env = {name: value for name, value in env.items() if not name.startswith("PROVENANT_S3_")}  # the local folder
    result = subprocess.run(
        [sys.executable, "-c", WORKER], cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer == {"sink": "FileSink", "loaded": []}


def test_is_s3_tells_the_storages_apart_without_importing(tmp_path):
    assert is_s3(S3Storage(bucket_name="provenant-test")) is True
    assert is_s3(FileSystemStorage(location=tmp_path)) is False
