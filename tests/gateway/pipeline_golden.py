"""A deterministic site stream through the whole default pipeline, and the bodies it comes out as.

Written before the third pass of issue 13 (whole-poll processors, per-node plans, sample-wise
aggregation) and run by the code of commit 462850c to make `pipeline_golden.digests`: the sha256
of every block of BLOCK records' queue bodies (kind, tab, body, newline) then, and the count of each
kind. `test_pipeline_golden.py` checks that the pipeline still makes exactly those records, in that
order. The stream is built to reach every path those changes touch:

* two dust nodes, one with its own limits (a narrower PM10 range, a short stuck time for PM1, the
  humidity correction on): per-node plans must follow the node;
* spikes (Hampel), a stuck PM1 run, over-range values, NaN and infinities, failed reads (B, no
  value), device faults (D), humid air (pm_humid, dry PM readings);
* wind gusts that raise and clear the crane / lifting / boom alarms, a tilt that raises the
  pre-warning and the alarm, a dust episode for the spray, night noise (22:00 local is crossed);
* a node held back for 90 s and then handed over in one batch (late samples: revisions), a node
  silent for five minutes (windows closed by `tick`), a batch holding two nodes' polls.

Regenerate (only when a change of output is intended, and say why in the commit):
`.venv/bin/python -m tests.gateway.pipeline_golden > tests/gateway/pipeline_golden.digests`
(`--lines` prints the records themselves, to compare two versions with diff).
"""

from __future__ import annotations

import hashlib
import math
import random
import sys
from collections import Counter
from collections.abc import Iterator

from gateway.deliver.records import Record, kind_of, to_json
from gateway.model import Quality, Reading
from gateway.pipeline import SprayPlan, build_pipeline
from gateway.process.limits import LimitsResolver
from tests.gateway.process.support import local

CHANNELS = {
    "dust": ("pm25", "pm10", "pm1", "temperature", "humidity", "pressure"),
    "noise": ("laeq_1s", "lamax_1s", "lamin_1s"),
    "tilt": ("pitch", "roll", "slope_x", "slope_y", "temperature"),
    "wind": ("wind_speed", "wind_dir", "wind_gust_3s"),
}
NODES = (("dust-1", "dust"), ("dust-2", "dust"), ("noise-1", "noise"), ("wind-1", "wind"), ("tilt-1", "tilt"))
START = local(21, 40)  # the GB 12523 night starts at 22:00 local time, 20 minutes in
SECONDS = 2400
HELD = ("wind-1", 590, 750)  # this node's polls between these seconds arrive together at the end
SILENT = ("noise-1", 1500, 1800)  # no poll from this node between these seconds
NODE_LIMITS = {
    "dust-2": {
        "quality": {"ranges": {"pm10": [0.0, 300.0]}, "stuck_s": {"pm1": 60.0}},
        "humidity": {"correction": True},
    }
}


def _value(node: str, channel: str, second: int, rng: random.Random) -> float:
    """Plausible values with episodes: gusts, a tilt, dust, night noise, humid air."""
    episode = 1.0 if 300 <= second < 900 else 0.0
    base = {
        "pm25": 40.0 + 60.0 * episode, "pm10": 90.0 + 150.0 * episode, "pm1": 25.0,
        "temperature": 22.0, "humidity": 70.0 + 10.0 * math.sin(second / 200.0), "pressure": 101.2,
        "laeq_1s": 58.0 + 8.0 * math.sin(second / 300.0), "lamax_1s": 63.0, "lamin_1s": 52.0,
        "pitch": 10.0, "roll": 5.0, "slope_x": 5.0 * math.sin(second / 500.0), "slope_y": 0.5,
        "wind_speed": 6.0 + 7.0 * episode, "wind_dir": (200.0 + 90.0 * math.sin(second / 100.0)) % 360.0,
        "wind_gust_3s": 8.0 + 6.0 * episode,
    }[channel]
    if node == "dust-2" and channel == "pm1" and 1000 <= second < 1200:
        return 25.0  # a stuck sensor (this node's stuck time is 60 s)
    value = round(base + rng.gauss(0.0, 0.03 * abs(base) + 0.1), 1)
    if channel in ("pm25", "pm10") and rng.random() < 0.01:
        value *= 6.0  # a spike
    return value


def _poll(node: str, kind: str, second: int, rng: random.Random) -> list[Reading]:
    t = START + second + 0.1 * NODES.index((node, kind))
    fate = rng.random()
    out: list[Reading] = []
    for channel in CHANNELS[kind]:
        quality, value = Quality.NORMAL, _value(node, channel, second, rng)
        if fate < 0.004:
            quality, value = Quality.COMMUNICATION_FAILURE, math.nan
        elif fate < 0.006:
            quality = Quality.DEVICE_FAULT
        roll = rng.random()
        if roll < 0.002:
            value = 140.0 if kind == "noise" else 5000.0  # over range (a level of 5000 dB overflows 10^(L/10))
        elif roll < 0.003:
            value = rng.choice([math.nan, math.inf, -math.inf])
        out.append(Reading(node, kind, channel, None if math.isnan(value) and quality is not Quality.NORMAL
                           else value, "", quality, t, second + 1))
    return out


def batches() -> Iterator[tuple[float, list[Reading]]]:
    """(receive time, readings) in the order the pipeline gets them."""
    rng = random.Random(13)
    held: list[Reading] = []
    for second in range(SECONDS):
        polls: list[list[Reading]] = []
        for node, kind in NODES:
            if node == SILENT[0] and SILENT[1] <= second < SILENT[2]:
                continue
            poll = _poll(node, kind, second, rng)
            if node == HELD[0] and HELD[1] <= second < HELD[2]:
                held += poll
                continue
            polls.append(poll)
        now = START + second + 0.9
        if second % 97 == 0 and len(polls) >= 2:
            polls[0:2] = [polls[0] + polls[1]]  # two nodes' polls in one batch
        for poll in polls:
            yield now, poll
        if second == HELD[2]:
            yield now, held


def records() -> Iterator[Record]:
    pipeline = build_pipeline(LimitsResolver.from_config({}, NODE_LIMITS), spray=SprayPlan(coils={"dust-1": "dust-1"}))
    ticked = START
    for now, readings in batches():
        yield from pipeline.feed(readings, now)
        if now - ticked >= 1.0:
            yield from pipeline.tick(now)
            ticked = now
    yield from pipeline.tick(START + SECONDS + 3600.0)


def lines() -> Iterator[str]:
    for record in records():
        yield f"{kind_of(record)}\t{to_json(record)}"


BLOCK = 500


def digests() -> list[str]:
    """`count KIND N` per record kind, then `block FIRST SHA256` per BLOCK lines (what the fixture holds)."""
    kinds: Counter[str] = Counter()
    blocks: list[str] = []
    h = hashlib.sha256()
    n = 0
    for line in lines():
        kinds[line.split("\t", 1)[0]] += 1
        h.update(line.encode() + b"\n")
        n += 1
        if n % BLOCK == 0:
            blocks.append(f"block {n - BLOCK} {h.hexdigest()}")
            h = hashlib.sha256()
    if n % BLOCK:
        blocks.append(f"block {n - n % BLOCK} {h.hexdigest()}")
    return [f"count {kind} {kinds[kind]}" for kind in sorted(kinds)] + blocks


if __name__ == "__main__":
    print("\n".join(lines() if sys.argv[1:] == ["--lines"] else digests()))
