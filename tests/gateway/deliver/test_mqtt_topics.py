"""Topics, message ids and payloads of the MQTT sink (sans-IO), and the credential files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.deliver.credentials import CredentialError, read_credential
from gateway.deliver.mqtt_topics import TopicError, TopicTree, level
from gateway.deliver.records import from_json, to_json
from gateway.model import Quality, Reading
from gateway.process.aggregate import Aggregate

TREE = TopicTree("sitewatch", "site-a", "gw-1")


@given(st.text(max_size=40))
def test_any_name_is_one_level_inside_the_subtree(name: str) -> None:
    encoded = level(name)
    assert encoded and not {"/", "+", "#"} & set(encoded)
    r = Reading(name, "dust", name, 1.0, "ug/m3", Quality.NORMAL, 1e9, 1)
    topic = TREE.topic(r)
    assert TREE.owns(topic) and topic.count("/") == 5


def test_names_stay_readable_and_distinct() -> None:
    assert level("dust-1") == "dust-1"
    assert level("a/b") != level("a%2Fb")


@pytest.mark.parametrize(("prefix", "site", "gateway"),
                         [("", "s", "g"), ("a/+/b", "s", "g"), ("$SYS", "s", "g"), ("p", "s/t", "g"), ("p", "s", "")])
def test_bad_prefix_site_or_gateway_is_refused(prefix: str, site: str, gateway: str) -> None:
    with pytest.raises(TopicError):
        TopicTree(prefix, site, gateway)


def test_the_id_comes_from_the_record_so_a_copy_from_a_rebuilt_queue_keeps_it() -> None:
    r = Reading("dust-1", "dust", "pm10", 41.5, "ug/m3", Quality.NORMAL, 1796300000.123456, 77)
    copy = from_json("reading", to_json(r))
    assert TREE.message_id(copy) == TREE.message_id(r) == "site-a/gw-1/reading/dust-1/pm10/77/1796300000.123456"
    other = Reading("dust-1", "dust", "pm2_5", 41.5, "ug/m3", Quality.NORMAL, 1796300000.123456, 77)
    assert TREE.message_id(other) != TREE.message_id(r)


def test_a_revised_aggregate_has_a_new_id_and_says_its_revision() -> None:
    a = Aggregate("dust-1", "dust", "pm10_1h_mean", "pm10", "mean", "1h", 1e9, 1e9 + 3600, 42.0, "ug/m3", 3600,
                  3600, True, Quality.NORMAL)
    payload = json.loads(TREE.payload(a))
    assert payload["revision"] == 0 and payload["id"].endswith("/r0")
    assert payload["record"]["value"] == 42.0 and payload["kind"] == "aggregate"


def test_payloads_are_strict_json_even_for_infinite_values() -> None:
    r = Reading("dust-1", "dust", "pm10", float("inf"), "ug/m3", Quality.OVER_RANGE, 1e9, 1)
    assert json.loads(TREE.payload(r), parse_constant=lambda c: pytest.fail(c))["record"]["value"] == "inf"


def test_a_credential_is_found_in_the_credentials_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mqtt-password").write_text("s3cret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert read_credential("mqtt-password", "password_file") == b"s3cret"


def test_a_missing_or_empty_credential_names_where_it_looked_not_the_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    with pytest.raises(CredentialError, match=f"password_file: no file {tmp_path}/nope or nope"):
        read_credential("nope", "password_file")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(CredentialError, match="is empty"):
        read_credential(str(tmp_path / "empty"), "password_file")
