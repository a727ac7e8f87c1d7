"""The MQTT payload built from parts (for speed) is byte for byte what encoding its head as one object gives."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from gateway.deliver.mqtt_topics import TopicTree, revision
from gateway.deliver.records import Record, kind_of, to_json
from gateway.model import Quality, Reading
from gateway.process.aggregate import Aggregate
from tests.gateway.deliver.test_health_records import reports

names = st.text(min_size=1, max_size=20)  # any text: quotes, backslashes, control and non-ASCII characters
sites = st.from_regex(r"[A-Za-z0-9_.-]{1,16}", fullmatch=True)
values = st.none() | st.floats(allow_nan=True, allow_infinity=True)
readings = st.builds(Reading, names, names, names, values, names, st.sampled_from(Quality), st.floats(0, 4e9),
                     st.integers(0, 2**32))
aggregates = st.builds(Aggregate, names, names, names, names, names, names, st.floats(0, 4e9), st.floats(0, 4e9),
                       values, names, st.integers(0, 10**6), st.integers(0, 10**6), st.booleans(),
                       st.sampled_from(Quality), st.integers(0, 1000))


def reference(tree: TopicTree, record: Record) -> bytes:
    """The payload as the sink first built it: the head as one object."""
    head: dict[str, object] = {"id": tree.message_id(record), "kind": kind_of(record), "site": tree.site,
                               "gateway": tree.gateway}
    if isinstance(record, Aggregate):
        head["revision"] = revision(record)
    text = json.dumps(head, separators=(",", ":"), ensure_ascii=False)[:-1]
    return (text + ',"record":' + to_json(record) + "}").encode("utf-8")


@given(sites, sites, readings | aggregates | reports)
def test_the_payload_is_what_encoding_the_head_as_an_object_gives(site: str, gateway: str, record: Record) -> None:
    tree = TopicTree("sitewatch", site, gateway)
    payload = tree.payload(record)
    assert payload == reference(tree, record)
    assert json.loads(payload)["id"] == tree.message_id(record)
