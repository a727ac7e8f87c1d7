"""The log tells one consistent story per backfill episode: missed, lost, done, with that episode's own counts."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from gateway.acquire.poller import BusPoller
from gateway.model import Gap, Reading
from simulator.site import NodeSpec
from tests.gateway.acquire.test_backfill_bus import Rig, config, run, simulated

MISSED = re.compile(r"node noise-5: (\d+) samples missed, fetching them from its history$")
MORE = re.compile(r"node noise-5: (\d+) more samples missed during the backfill, fetching them too$")
DONE = re.compile(r"node noise-5: backfill done: (\d+) missed samples fetched, (\d+) lost(.*)$")


async def test_a_restart_during_an_outage_is_one_story_with_its_own_counts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    delivered: list[Reading | Gap] = []
    with simulated(tmp_path, NodeSpec("noise", 5)) as (site, port), caplog.at_level(logging.INFO, "gateway.acquire"):
        rig = Rig(site.node("bus0", 5))
        poller = BusPoller(config(port, ("noise", 5, 0.1)), delivered.extend, on_gap=delivered.extend)

        def power_cut() -> None:
            rig.powered = False

        def power_back() -> None:  # it boots with its transceiver down: the new samples wait in its ring
            rig.restart = True
            rig.mute = True
            rig.powered = True

        def transceiver_up() -> None:
            rig.mute = False

        def told() -> bool:
            return any(DONE.search(r.getMessage()) for r in caplog.records)

        await run(poller, [(1.2, power_cut), (2.0, power_back), (3.0, transceiver_up)], until=4.0, done=told)
    lines = [r.getMessage() for r in caplog.records if "noise-5" in r.getMessage()]
    story = [line for line in lines if "missed" in line or "lost" in line or "backfill" in line]
    missed = [int(m.group(1)) for line in story if (m := MISSED.search(line))]
    done = [m for line in story if (m := DONE.search(line))]
    assert len(missed) == 1 and len(done) == 1, story
    fetched, lost, rest = int(done[0].group(1)), int(done[0].group(2)), done[0].group(3)
    # What the start said (and any poll skipped meanwhile on a loaded host: stress run s5a) is what the end
    # accounts for.
    more = sum(int(m.group(1)) for line in story if (m := MORE.search(line)))
    assert fetched + lost == missed[0] + more, story
    assert fetched == poller.backfill["noise-5"].fetched and fetched >= 3
    # The old boot's last samples went with its memory: said once, and the end says so too.
    unknown = [line for line in story if "how many is unknown" in line]
    assert len(unknown) == 1 and "before it restarted are lost (reboot" in unknown[0], story
    assert rest == ", and an unknown number taken before a restart", story
    assert not any("so far" in line for line in lines), lines
    assert story.index(unknown[0]) < story.index(done[0].string)
