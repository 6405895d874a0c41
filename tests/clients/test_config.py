"""Where the client finds its server and token: arguments, then the environment, then a profile file that only
its owner may read (clients/python/src/provenant_client/config.py)."""

import stat

import pytest
from provenant_client import Client, save_profile
from provenant_client.config import config_path


def authorization(client: Client) -> str | None:
    return client.http.headers.get("Authorization")


def test_a_saved_profile_is_readable_by_its_owner_only(client_environment):
    path = save_profile("work", url="https://provenant.example.com", token="prv_secret")

    assert path == client_environment / "config" / "provenant" / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_the_first_profile_saved_is_the_default_and_others_are_chosen_by_name():
    save_profile("work", url="https://work.example.com/", token="prv_work")
    save_profile("lab", url="https://lab.example.com", token="prv_lab")

    with Client() as default, Client(profile="lab") as lab:
        assert (default.server, authorization(default), default.profile) == (
            "https://work.example.com",
            "Bearer prv_work",
            "work",
        )
        assert (lab.server, authorization(lab)) == ("https://lab.example.com", "Bearer prv_lab")


def test_saving_a_profile_again_replaces_it_and_can_make_it_the_default():
    save_profile("work", url="https://work.example.com", token="prv_old")
    save_profile("lab", url="https://lab.example.com", token="prv_lab", make_default=True)
    save_profile("work", url="https://work.example.com", token="prv_new")

    with Client() as default, Client(profile="work") as work:
        assert default.server == "https://lab.example.com"
        assert authorization(work) == "Bearer prv_new"


def test_the_environment_takes_precedence_over_the_profile(monkeypatch):
    save_profile(url="https://work.example.com", token="prv_profile")
    monkeypatch.setenv("PROVENANT_URL", "https://work.example.com/api/v1")
    monkeypatch.setenv("PROVENANT_TOKEN", "prv_environment")

    with Client() as client:
        assert (client.server, authorization(client)) == ("https://work.example.com", "Bearer prv_environment")


def test_arguments_take_precedence_over_the_environment(monkeypatch):
    monkeypatch.setenv("PROVENANT_URL", "https://work.example.com")
    monkeypatch.setenv("PROVENANT_TOKEN", "prv_environment")

    with Client("https://other.example.com", "prv_argument") as client:
        assert (client.server, authorization(client)) == ("https://other.example.com", "Bearer prv_argument")


def test_the_environment_names_the_profile(monkeypatch):
    save_profile("work", url="https://work.example.com", token="prv_work")
    save_profile("lab", url="https://lab.example.com", token="prv_lab")
    monkeypatch.setenv("PROVENANT_PROFILE", "lab")

    with Client() as client:
        assert authorization(client) == "Bearer prv_lab"


def test_a_profiles_token_is_never_sent_to_another_server(monkeypatch):
    save_profile(url="https://work.example.com", token="prv_work")
    monkeypatch.setenv("PROVENANT_URL", "https://elsewhere.example.com")

    with Client() as client:
        assert client.server == "https://elsewhere.example.com"
        assert authorization(client) is None


def test_no_server_anywhere_says_how_to_name_one():
    assert not config_path().exists()
    with pytest.raises(ValueError, match="PROVENANT_URL"):
        Client()


def test_a_profile_named_but_not_saved_is_an_error():
    save_profile("work", url="https://work.example.com", token="prv_work")
    with pytest.raises(ValueError, match="No profile 'lab'"):
        Client(profile="lab")


def test_the_config_file_can_be_named_by_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PROVENANT_CONFIG", str(tmp_path / "elsewhere.json"))
    save_profile(url="https://work.example.com", token="prv_work")

    assert (tmp_path / "elsewhere.json").exists()
    with Client() as client:
        assert authorization(client) == "Bearer prv_work"


@pytest.mark.parametrize("url", ["localhost:8765", "ftp://provenant.example.com", "http://", "http://host:port"])
def test_a_server_url_that_is_not_http_with_a_host_is_refused_at_once_naming_its_setting(url, monkeypatch):
    with pytest.raises(ValueError, match=r"from url=\)"):
        Client(url)

    monkeypatch.setenv("PROVENANT_URL", url)
    with pytest.raises(ValueError, match=r"from PROVENANT_URL\)"):
        Client()
