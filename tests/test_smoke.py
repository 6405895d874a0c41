def test_api_root_requires_authentication(anonymous_api):
    assert anonymous_api.get("/api/v1/projects/").status_code == 401


def test_publish_and_download_round_trip(api):
    from tests.factories import sha256

    data = b"weights" * 100
    assert api.post("/api/v1/projects/", {"slug": "demo", "name": "Demo"}, format="json").status_code == 201
    r = api.put(f"/api/v1/projects/demo/blobs/{sha256(data)}", data, content_type="application/octet-stream")
    assert r.status_code == 201, r.content
    art = api.post("/api/v1/artifacts/", {"project": "demo", "name": "m", "kind": "model"}, format="json").json()
    v = api.post("/api/v1/artifact-versions/", {"artifact": art["id"], "digest": sha256(data)}, format="json")
    assert v.status_code == 201, v.content
    d = api.get(v.json()["download_url"])
    assert b"".join(d.streaming_content) == data
