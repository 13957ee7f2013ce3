"""API keys on disk (hashed only) and the rule that a non-loopback bind needs them."""

from __future__ import annotations

import json
import stat

import pytest

from covey.api.keys import ApiKeys
from covey.api.server import api_keys, is_loopback
from covey.errors import ApiKeyError, ConfigError
from covey.settings import Settings


def test_create_verify_revoke_and_only_hashes_on_disk(tmp_path):
    path = tmp_path / "api_keys.json"
    keys = ApiKeys(path)
    key, secret = keys.create("laptop")
    assert secret.startswith("sk-covey-") and len(secret) > 40
    assert secret not in path.read_text() and key.sha256 in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ApiKeys(path).verify(secret) == key
    assert keys.verify(secret + "x") is None
    keys.revoke(key.key_id)
    assert keys.verify(secret) is None
    [listed] = ApiKeys(path).list()
    assert listed.revoked is not None and listed.name == "laptop"
    assert json.loads(path.read_text())["keys"][0]["key_id"] == key.key_id


def test_a_running_server_sees_revocation_from_another_process(tmp_path):
    path = tmp_path / "api_keys.json"
    server_side = ApiKeys(path)
    _, secret = ApiKeys(path).create("phone")
    assert server_side.verify(secret) is not None  # created after the server read the file
    ApiKeys(path).revoke("phone")
    assert server_side.verify(secret) is None


def test_revoke_unknown_or_empty_name_says_what_to_do(tmp_path):
    keys = ApiKeys(tmp_path / "k.json")
    with pytest.raises(ApiKeyError) as info:
        keys.revoke("nope")
    assert "covey serve keys list" in str(info.value)
    with pytest.raises(ApiKeyError):
        keys.create("  ")


def test_damaged_key_file(tmp_path):
    path = tmp_path / "k.json"
    path.write_text("{oops")
    with pytest.raises(ApiKeyError) as info:
        ApiKeys(path)
    assert "move the damaged file aside" in str(info.value)


def test_loopback_needs_no_keys_but_a_lan_bind_does(covey_env):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("den.local")
    assert api_keys(Settings.load()) is None
    lan = Settings.load(serve={"host": "0.0.0.0"})
    with pytest.raises(ConfigError) as info:
        api_keys(lan)
    assert "covey serve keys create" in str(info.value)
    ApiKeys(covey_env / "api_keys.json").create("laptop")
    assert api_keys(lan) is not None
    assert api_keys(Settings.load(serve={"require_keys": "always"})) is not None
    with pytest.raises(ConfigError):
        api_keys(Settings.load(serve={"host": "0.0.0.0", "require_keys": "never"}))
