"""The portal's artifact version page and its lineage picture: what a reviewer sees of one version, and only what
they may see."""

import itertools
import json
import re
import shlex
import struct
import xml.etree.ElementTree as ET
from html import unescape
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from provenant_client.cli import build_parser

from artifacts.access.roles import Role
from artifacts.lineage_graph import GraphNode, render_svg
from artifacts.services.integrity import blob_verify
from core.audit.actions import AuditAction
from core.models import AuditEntry
from tests.artifacts.factories import (
    ArtifactFactory,
    ArtifactVersionFactory,
    DatasetVersionFactory,
    ProjectFactory,
    RunFactory,
    UserFactory,
    grant,
)
from tests.artifacts.test_previews import onnx_model
from tests.governance.factories import ModelVersionFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def pipeline():
    """dataset v1 → prep run → preprocessor v1 → train run (also reads dataset v2) → model v1 → eval run → report"""
    project = ProjectFactory()
    ds1 = DatasetVersionFactory(dataset__project=project)
    ds2 = DatasetVersionFactory(dataset=ds1.dataset)
    prep = RunFactory(project=project, input_dataset_versions=[ds1])
    preprocessor = ArtifactVersionFactory(artifact=ArtifactFactory(project=project, kind="preprocessor"), run=prep)
    train = RunFactory(
        project=project,
        name="train-gbm",
        parameters={"max_depth": 7},
        metrics={"auc": 0.912},
        environment={"python_version": "3.12.1"},
        input_dataset_versions=[ds2],
        input_artifact_versions=[preprocessor],
    )
    model = ArtifactVersionFactory(
        artifact=ArtifactFactory(project=project, name="fraud-model"),
        run=train,
        media_type="application/x-onnx",
        license="Apache-2.0",
    )
    evaluation = RunFactory(project=project, name="evaluate", input_artifact_versions=[model])
    report = ArtifactVersionFactory(
        artifact=ArtifactFactory(project=project, name="eval-report", kind="evaluation_report"), run=evaluation
    )
    return locals()


def parse(svg: str | bytes) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 (the picture under test, not untrusted input)


def viewer(project):
    return grant(Role.VIEWER, on=project).user


def page_of(client, version):
    return client.get(f"/versions/{version.pk}/")


def svg_of(client, version) -> ET.Element:
    response = client.get(f"/versions/{version.pk}/lineage.svg")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("image/svg+xml")
    return parse(response.content)


def drawn_nodes(svg: ET.Element) -> dict[str, ET.Element]:
    return {g.get("data-node"): g for g in svg.iter(f"{SVG}g") if g.get("data-node")}


def test_anonymous_visitors_are_sent_to_sign_in(client, pipeline):
    response = page_of(client, pipeline["model"])

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    assert client.get(f"/versions/{pipeline['model'].pk}/lineage.svg").status_code == 302


def test_a_user_without_a_role_gets_404_for_the_page_and_the_picture(client, pipeline):
    client.force_login(UserFactory())

    assert page_of(client, pipeline["model"]).status_code == 404
    assert client.get(f"/versions/{pipeline['model'].pk}/lineage.svg").status_code == 404
    download = client.get(f"/versions/{pipeline['model'].pk}/download/")
    assert download.status_code == 404
    assert download["Content-Type"].startswith("text/html")  # the portal's 404 page, not the API's JSON
    assert client.get("/versions/999999/").status_code == 404


def test_a_project_viewer_gets_404_for_a_restricted_artifact(client):
    project = ProjectFactory()
    secret = ArtifactVersionFactory(artifact=ArtifactFactory(project=project, restricted=True))
    client.force_login(viewer(project))

    assert page_of(client, secret).status_code == 404

    client.force_login(grant(Role.VIEWER, on=secret.artifact).user)
    assert page_of(client, secret).status_code == 200


def test_page_shows_the_bytes_the_run_its_inputs_and_its_consumers(client, pipeline):
    p = pipeline
    client.force_login(viewer(p["project"]))

    response = page_of(client, p["model"])

    assert response.status_code == 200
    html = response.content.decode()
    assert p["model"].blob.prefixed_digest in html
    assert "256\xa0bytes" in html  # filesizeformat keeps number and unit together
    assert "application/x-onnx" in html
    assert "<dt>License</dt><dd><code>Apache-2.0</code>" in html
    assert "train-gbm" in html
    assert p["train"].code_commit in html
    assert "max_depth" in html
    assert "auc" in html
    assert "0.912" in html
    assert "3.12.1" in html
    assert 'href="https://git.example.com/ml/churn.git"' in html
    assert f"{p['ds2'].dataset.name} v{p['ds2'].number}" in html
    assert f'href="/versions/{p["preprocessor"].pk}/"' in html
    assert "evaluate" in html
    assert f'href="/versions/{p["report"].pk}/"' in html


def test_a_repository_that_is_not_a_web_address_is_not_a_link(client):
    project = ProjectFactory()
    run = RunFactory(project=project, code_repository="javascript:alert(1)")
    version = ArtifactVersionFactory(artifact=ArtifactFactory(project=project), run=run)
    client.force_login(viewer(project))

    html = page_of(client, version).content.decode()

    assert "javascript:alert(1)" in html
    assert 'href="javascript:' not in html


def test_the_registered_model_versions_on_it_are_listed_with_links(client, pipeline):
    p = pipeline
    registered = RegisteredModelFactory(project=p["project"], name="fraud-detector")
    model_version = ModelVersionFactory(registered_model=registered, artifact_version=p["model"])
    client.force_login(viewer(p["project"]))

    html = page_of(client, p["model"]).content.decode()

    assert f'href="/models/{registered.pk}/"' in html
    assert f"fraud-detector v{model_version.number}" in html


def test_download_button_serves_the_apis_download_and_is_hidden_for_quarantined_bytes(
    client, pipeline, isolated_blob_folder
):
    p = pipeline
    client.force_login(viewer(p["project"]))
    download = f"/versions/{p['model'].pk}/download/"
    assert download in page_of(client, p["model"]).content.decode()
    response = client.get(download)
    assert response.status_code == 200  # the same rule as the API: the viewer may read the bytes
    stored = (isolated_blob_folder / p["model"].blob.storage_key).read_bytes()
    assert b"".join(response.streaming_content) == stored
    assert AuditEntry.objects.filter(action="blob.downloaded", object_id=str(p["model"].blob.pk)).exists()

    (isolated_blob_folder / p["model"].blob.storage_key).write_bytes(b"not the bytes that were uploaded")
    blob_verify(blob=p["model"].blob)

    html = page_of(client, p["model"]).content.decode()
    assert download not in html
    assert "quarantined" in html


def test_verification_history_comes_from_the_log_for_those_who_read_it(client, pipeline):
    p = pipeline
    blob_verify(blob=p["model"].blob)
    blob_verify(blob=p["model"].blob)
    client.force_login(UserFactory(is_superuser=True))

    html = page_of(client, p["model"]).content.decode()
    assert html.count('<span class="badge verified">Verified</span></td>') == 2

    client.force_login(viewer(p["project"]))
    html = page_of(client, p["model"]).content.decode()
    assert '<span class="badge verified">Verified</span></td>' not in html
    assert "since the check of" in html


def test_a_run_the_user_may_not_see_is_not_shown(client, pipeline):
    p = pipeline
    user = grant(Role.VIEWER, on=p["model"].artifact).user  # the artifact alone, not its project
    client.force_login(user)

    response = page_of(client, p["model"])

    assert response.status_code == 200
    html = response.content.decode()
    assert "train-gbm" not in html
    assert "A run in a project you may not read" in html
    assert p["ds2"].dataset.name not in html


def test_lineage_picture_has_a_linked_node_per_record_on_distinct_layers(client, pipeline):
    p = pipeline
    client.force_login(viewer(p["project"]))

    svg = svg_of(client, p["model"])

    nodes = drawn_nodes(svg)
    expected = {
        f"artifact_version:{p['model'].pk}",
        f"run:{p['train'].pk}",
        f"dataset_version:{p['ds2'].pk}",
        f"artifact_version:{p['preprocessor'].pk}",
        f"run:{p['prep'].pk}",
        f"dataset_version:{p['ds1'].pk}",
        f"run:{p['evaluation'].pk}",
        f"artifact_version:{p['report'].pk}",
    }
    assert set(nodes) == expected
    links = {a.get("href") for a in svg.iter(f"{SVG}a")}
    assert f"/versions/{p['preprocessor'].pk}/" in links
    assert f"/versions/{p['report'].pk}/" in links
    assert all(a.get("aria-label") for a in svg.iter(f"{SVG}a"))
    assert svg.find(f"{SVG}title").text == f"Lineage of {p['model']}"
    assert svg.find(f"{SVG}desc") is not None

    def left(key: str) -> float:
        return float(nodes[key].find(f"{SVG}rect").get("x"))

    chain = ["dataset_version:{ds1}", "run:{prep}", "artifact_version:{preprocessor}", "run:{train}"]
    chain += ["artifact_version:{model}", "run:{evaluation}", "artifact_version:{report}"]
    xs = [left(key.format(**{k: v.pk for k, v in p.items() if hasattr(v, "pk")})) for key in chain]
    assert xs == sorted(xs)
    assert len(set(xs)) == len(xs)
    paths = list(svg.iter(f"{SVG}path"))
    assert len(paths) > 7  # seven edges and the arrow head


def test_the_page_embeds_the_picture_and_lists_the_lineage(client, pipeline):
    p = pipeline
    client.force_login(viewer(p["project"]))

    html = page_of(client, p["model"]).content.decode()

    assert '<svg xmlns="http://www.w3.org/2000/svg" class="graph"' in html
    assert f'id="lineage-run-{p["prep"].pk}"' in html
    assert f'href="/runs/{p["prep"].pk}/"' in html
    assert f'href="/datasets/versions/{p["ds1"].pk}/"' in html


def test_lineage_leaves_out_what_the_user_may_not_see(client, pipeline):
    p = pipeline
    project = p["project"]
    hidden = ArtifactVersionFactory(
        artifact=ArtifactFactory(project=project, name="secret-model", restricted=True), run=p["evaluation"]
    )
    client.force_login(viewer(project))

    nodes = drawn_nodes(svg_of(client, p["model"]))
    html = page_of(client, p["model"]).content.decode()

    assert f"artifact_version:{hidden.pk}" not in nodes
    assert "secret-model" not in html
    assert "1 record you may not see is left out" in html


def test_a_large_lineage_is_cut_to_the_nearest_nodes_and_says_so(client, monkeypatch):
    from artifacts import selectors

    monkeypatch.setattr(selectors, "PORTAL_LINEAGE_NODES", 5)
    project = ProjectFactory()
    model = ArtifactVersionFactory(artifact=ArtifactFactory(project=project))
    for _ in range(8):
        RunFactory(project=project, input_artifact_versions=[model])
    client.force_login(viewer(project))

    assert len(drawn_nodes(svg_of(client, model))) == 6  # the version and the 5 nearest
    assert "only the nearest records are drawn" in page_of(client, model).content.decode()


def chain_of_consumers(project, model, count: int) -> None:
    for n in range(count):
        run = RunFactory(project=project, input_artifact_versions=[model])
        ArtifactVersionFactory(artifact=ArtifactFactory(project=project, name=f"derived-{n}"), run=run)
        DatasetVersionFactory(dataset__project=project)


@pytest.mark.parametrize("path", ["/versions/{pk}/", "/versions/{pk}/lineage.svg"])
def test_query_count_does_not_grow_with_the_lineage(client, path):
    def queries(count: int) -> int:
        project = ProjectFactory()
        train = RunFactory(
            project=project,
            input_dataset_versions=[DatasetVersionFactory(dataset__project=project) for _ in range(count)],
        )
        model = ArtifactVersionFactory(artifact=ArtifactFactory(project=project), run=train)
        chain_of_consumers(project, model, count)
        RegisteredModelFactory(project=project)
        client.force_login(viewer(project))
        with CaptureQueriesContext(connection) as captured:
            assert client.get(path.format(pk=model.pk)).status_code == 200
        return len(captured)

    assert queries(1) == queries(10)


def test_svg_labels_and_descriptions_are_escaped_and_cleaned_for_xml():
    hostile = "a <script>alert(\"x\")</script> & 'b'\x00\x1b"
    nodes = [
        GraphNode(key="dataset_version:1", kind="dataset_version", label=hostile, detail=hostile),
        GraphNode(key="run:1", kind="run", label="r", href='/x?"><script>'),
    ]

    svg = render_svg(nodes, [("dataset_version:1", "run:1")], title=hostile, description=hostile)

    root = parse(svg)  # well formed despite the control characters
    assert "<script>" not in svg
    assert root.find(f"{SVG}title").text == "a <script>alert(\"x\")</script> & 'b'\ufffd\ufffd"
    assert next(root.iter(f"{SVG}a")).get("href") == '/x?"><script>'


def test_svg_of_a_chain_puts_each_node_on_its_own_layer_and_separate_parts_apart():
    keys = ["dataset_version:1", "run:1", "artifact_version:1", "run:2", "artifact_version:2"]
    kinds = ["dataset_version", "run", "artifact_version", "run", "artifact_version"]
    nodes = [GraphNode(key=k, kind=kind, label=k) for k, kind in zip(keys, kinds, strict=True)]
    nodes.append(GraphNode(key="artifact_version:9", kind="artifact_version", label="alone"))

    root = parse(render_svg(nodes, list(itertools.pairwise(keys)), title="t", description="d"))

    boxes = {
        g.get("data-node"): (float(g.find(f"{SVG}rect").get("x")), float(g.find(f"{SVG}rect").get("y")))
        for g in root.iter(f"{SVG}g")
        if g.get("data-node")
    }
    xs = [boxes[k][0] for k in keys]
    assert xs == sorted(xs)
    assert len(set(xs)) == len(keys)
    assert len(set(boxes.values())) == len(boxes)
    assert root.get("role") == "group"
    assert root.get("aria-labelledby")


# The lineage links' names, copy buttons, the commands that fetch a version, the preview ----------------------------


def words(text: str) -> list[str]:
    """The words an accessibility checker compares (axe's label-content-name-mismatch): letters and digits, case
    folded, with parenthesised asides left out."""
    return re.findall(r"[^\W_]+", re.sub(r"\([^()]*\)", " ", text).lower())


@pytest.mark.parametrize(
    "node",
    [
        GraphNode(key="run:1", kind="run", label="train-gbm", detail="run · abc123", href="/x"),
        GraphNode(key="artifact_version:1", kind="artifact_version", label="a" * 60, detail="Model v3", href="/y"),
        GraphNode(
            key="artifact_version:2", kind="artifact_version", label="m", detail="Model v1", href="/z", current=True
        ),
    ],
    ids=["plain", "cut-to-fit", "this-version"],
)
def test_each_lineage_link_is_named_by_the_words_it_shows(node):
    root = parse(render_svg([node], [], title="t", description="d"))
    link = next(root.iter(f"{SVG}a"))

    shown = " ".join("".join(text.itertext()) for text in link.iter(f"{SVG}text"))
    name = link.get("aria-label")

    shown_words, name_words = words(shown), words(name)
    assert shown_words == name_words[: len(shown_words)]
    assert node.label in name  # a label cut to fit the box is still spoken whole


def test_the_two_lines_of_a_lineage_box_read_as_separate_words():
    root = parse(
        render_svg(
            [GraphNode(key="run:1", kind="run", label="train", detail="run", href="/x")], [], title="t", description="d"
        )
    )
    link = next(root.iter(f"{SVG}a"))

    assert "".join(link.itertext()).endswith("train run")


def copy_buttons(html: str) -> list[dict]:
    return [
        dict(re.findall(r'([\w-]+)="([^"]*)"', attributes), text=text)
        for attributes, text in re.findall(r'<button type="button" class="copy"([^>]*)>([^<]*)</button>', html)
    ]


def test_digests_and_ids_have_copy_buttons_named_for_what_they_copy(client, pipeline):
    p = pipeline
    client.force_login(viewer(p["project"]))

    html = page_of(client, p["model"]).content.decode()

    buttons = {button["aria-label"]: button for button in copy_buttons(html)}
    assert buttons["Copy digest"]["data-copy-text"] == p["model"].blob.prefixed_digest
    assert buttons["Copy version id"]["data-copy-text"] == str(p["model"].pk)
    assert buttons["Copy run id"]["data-copy-text"] == p["train"].external_id
    assert buttons["Copy commit"]["data-copy-text"] == p["train"].code_commit
    assert all(button["text"] == "Copy" and "Copy" in button["aria-label"] for button in buttons.values())
    # Hidden until copy.js finds a clipboard to write to: no button that does nothing without a script.
    assert all(" hidden " in markup for markup in re.findall(r'<button type="button" class="copy"[^>]*>', html))
    stylesheet = (Path(settings.BASE_DIR) / "static" / "portal" / "portal.css").read_text()
    assert "button.copy[hidden] { display: none; }" in stylesheet
    # The script is a static file (the CSP allows no inline script), deferred, and it exists.
    assert re.search(r'<script src="/static/portal/copy\.js" defer></script>', html)
    assert "<script>" not in html
    assert "navigator.clipboard" in (Path(settings.BASE_DIR) / "static" / "portal" / "copy.js").read_text()


def snippet(html: str, which: str) -> str:
    return unescape(re.search(rf'<code id="usage-{which}-code">(.*?)</code>', html, re.S)[1])


def test_the_pull_command_shown_is_one_the_real_cli_accepts(client, pipeline):
    p = pipeline
    client.force_login(viewer(p["project"]))

    html = page_of(client, p["model"]).content.decode()

    arguments = build_parser().parse_args(shlex.split(snippet(html, "cli"))[1:])
    assert (arguments.command, arguments.ref, arguments.dest) == ("pull", str(p["model"].pk), "./")
    assert arguments.url == "http://testserver/api/v1"
    assert f"Client('http://testserver/api/v1').pull({p['model'].pk}, './')" in snippet(html, "python")
    curl = shlex.split(snippet(html, "curl"))
    assert curl[-1] == f"http://testserver/api/v1/artifact-versions/{p['model'].pk}/download/"
    assert curl[curl.index("-o") + 1] == f"fraud-model-v{p['model'].number}"
    assert client.get(curl[-1]).status_code == 200  # the address curl is given answers with the bytes


def test_a_hostile_file_name_cannot_break_out_of_the_commands(client):
    project = ProjectFactory()
    version = ArtifactVersionFactory(
        artifact=ArtifactFactory(project=project, name="m"), metadata={"filename": "x.$(rm -rf ~)'; echo"}
    )
    client.force_login(viewer(project))

    html = page_of(client, version).content.decode()

    curl = shlex.split(snippet(html, "curl"))
    assert re.fullmatch(r"[\w.-]+", curl[curl.index("-o") + 1])
    assert "$(" not in snippet(html, "curl").replace("$PROVENANT_TOKEN", "")


def test_no_commands_or_preview_for_bytes_that_are_not_served(client, pipeline, isolated_blob_folder):
    p = pipeline
    (isolated_blob_folder / p["model"].blob.storage_key).write_bytes(b"not the bytes that were uploaded")
    blob_verify(blob=p["model"].blob)
    client.force_login(viewer(p["project"]))

    html = client.get(f"/versions/{p['model'].pk}/?preview=1").content.decode()

    assert 'id="usage"' not in html
    assert 'id="preview"' not in html


def downloads_logged() -> int:
    return AuditEntry.objects.filter(action=AuditAction.BLOB_DOWNLOADED).count()


def test_a_json_file_is_previewed_only_when_asked_and_the_read_is_logged(client, isolated_blob_folder):
    project = ProjectFactory()
    version = ArtifactVersionFactory(
        artifact=ArtifactFactory(project=project), content=b'{"auc": 0.91, "rows": 1000}', media_type="application/json"
    )
    client.force_login(viewer(project))

    html = page_of(client, version).content.decode()
    assert 'href="?preview=1#preview"' in html
    assert "&quot;auc&quot;" not in html
    assert downloads_logged() == 0

    html = client.get(f"/versions/{version.pk}/?preview=1").content.decode()
    assert "{\n  &quot;auc&quot;: 0.91,\n  &quot;rows&quot;: 1000\n}" in html
    assert downloads_logged() == 1


def test_a_csv_file_is_previewed_as_a_table(client, isolated_blob_folder):
    project = ProjectFactory()
    version = ArtifactVersionFactory(
        artifact=ArtifactFactory(project=project),
        content=b"amount,label\n12.5,0\n<b>9</b>,1\n",
        metadata={"filename": "rows.csv"},
    )
    client.force_login(viewer(project))

    html = client.get(f"/versions/{version.pk}/?preview=1").content.decode()

    assert '<th scope="col">amount</th><th scope="col">label</th>' in html
    assert '<td class="mono">&lt;b&gt;9&lt;/b&gt;</td>' in html


def test_a_safetensors_file_shows_its_tensors_and_a_binary_file_says_why_not(client, isolated_blob_folder):
    project = ProjectFactory()
    header = json.dumps({"weight": {"dtype": "F32", "shape": [1, 4], "data_offsets": [0, 16]}}).encode()
    model = ArtifactVersionFactory(
        artifact=ArtifactFactory(project=project),
        content=struct.pack("<Q", len(header)) + header + bytes(16),
        metadata={"filename": "model.safetensors"},
    )
    binary = ArtifactVersionFactory(artifact=ArtifactFactory(project=project), content=b"\x00\xff")
    client.force_login(viewer(project))

    html = client.get(f"/versions/{model.pk}/?preview=1").content.decode()
    assert (
        '<th scope="row" class="mono">weight</th><td class="mono">F32</td><td class="mono">[1, 4]</td><td>4</td>'
        in html
    )
    assert "1 tensor, 4 parameters" in html

    html = client.get(f"/versions/{binary.pk}/?preview=1").content.decode()
    assert "Only text, JSON and CSV files and safetensors and ONNX models are previewed" in html


def test_an_onnx_model_shows_its_inputs_outputs_and_weights(client, isolated_blob_folder):
    project = ProjectFactory()
    version = ArtifactVersionFactory(
        artifact=ArtifactFactory(project=project), content=onnx_model(), media_type="application/x-onnx"
    )
    client.force_login(viewer(project))

    html = client.get(f"/versions/{version.pk}/?preview=1").content.decode()

    assert '<tr><th scope="row">Input x</th><td class="mono wrap">float32 [batch, 4]</td></tr>' in html
    assert '<th scope="row" class="mono">W</th><td class="mono">float32</td><td class="mono">[4, 2]</td>' in html
    assert "2 weight tensors, 10 parameters." in html
