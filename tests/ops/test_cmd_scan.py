"""`sitewatch scan` against simulated buses of real firmware nodes on pseudo-terminals.

The sites run in burst mode (each reply handed over whole) and the scan gets a generous
--latency-ms, so a busy host delays replies without making them miss their timeout.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from firmware import regmap
from gateway.ops.cli import main
from gateway.ops.cmd_scan import parse_ids
from gateway.ops.config import parse_config
from gateway.profiles.vendor import load_vendor_profiles
from gateway.protocols import modbus_rtu_master as rtu
from gateway.scan.identify import IDENTITY_READ
from gateway.scan.plan import IDENTIFY_ATTEMPTS
from simulator.site import BusSpec, NodeSpec, Site
from tests.support.register_slave import Registers, RegisterSlave

# ms of slack a loaded host gets for each reply (a real scan uses 20): a sweep that missed a reply would miss
# a device, so sweeps get much; the --auto searches probe hundreds of silent ids and get less (their request
# bounds leave room for a lost reply).
LATENCY_MS = "250"
AUTO_LATENCY_MS = "100"


def scan(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    latency = AUTO_LATENCY_MS if "--auto" in args else LATENCY_MS
    status = main(["scan", "--latency-ms", latency, *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_scan_finds_every_node_of_a_bus_and_names_its_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nodes = (NodeSpec("dust", 1), NodeSpec("wind", 2), NodeSpec("noise", 5), NodeSpec("tilt", 9))
    with Site([BusSpec("bus0", nodes, baud=19200, parity="E")], tmp_path, burst=True) as site:
        port = site.paths["bus0"]
        status, out, _ = scan(capsys, "--port", port, "--baud", "19200", "--parity", "E", "--stop-after-silence", "6")
        assert status == 0
        assert f"{port} at 19200 8E1: 4 device(s) answered, 15 unit ids probed" in out
        for unit, kind in ((1, "dust"), (2, "wind"), (5, "noise"), (9, "tilt")):
            assert re.search(rf"unit +{unit}: sitewatch {kind} node", out), out
        assert "stopped after 6 silent ids in a row (at unit 15)" in out

        status, out, _ = scan(capsys, "--port", port, "--baud", "19200", "--parity", "E", "--ids", "1-10", "--toml")
        config = tomllib.loads(out)
        assert config["bus"][0]["baud"] == 19200 and config["bus"][0]["parity"] == "E"
        assert [(n["unit_id"], n["kind"]) for n in config["bus"][0]["node"]] == [
            (1, "dust"), (2, "wind"), (5, "noise"), (9, "tilt")
        ]


def test_scan_at_the_wrong_parity_reports_garbage_not_devices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Site([BusSpec("bus0", (NodeSpec("dust", 3),), baud=9600, parity="E")], tmp_path, burst=True) as site:
        status, out, _ = scan(capsys, "--port", site.paths["bus0"], "--ids", "1-5", "--no-identify")
    assert status == 1
    assert "0 device(s) answered" in out
    assert re.search(r"unit +3: garbage only", out), out


@pytest.mark.slow
def test_auto_finds_a_lone_device_at_an_unknown_setting_without_a_blind_search(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lone = NodeSpec("wind", 17, baud=57600, parity="O")  # the bus's own default is 9600 8N1
    with Site([BusSpec("bus0", (lone,))], tmp_path, burst=True) as site:
        status, out, err = scan(capsys, "--port", site.paths["bus0"], "--auto", "--stop-after-silence", "3")
        requests = site.bus("bus0").stats.frames_in
    assert status == 0, err
    found = re.search(r"found: unit 17 answers at 57600 8O1 \((\d+) requests\)", err)
    assert found, err
    # Blind: 21 settings x 247 ids = 5187 requests. The search: 3 likely ids at every setting (63), the ids
    # up to 17 at 9600 8N1 (14), unit 17 at the settings its garbage ranks first (a few): 82 on an idle host
    # (the exact bounds are in tests/gateway/scan/test_plan.py). Here with room for a garbage reply that a
    # loaded host lost (the sweep then goes on to the next setting): never near blind.
    assert int(found.group(1)) <= 3 * 21 + 2 * 244 + 2 * 21, err
    assert re.search(r"unit +17: sitewatch wind node", out), out
    assert requests < 5187 / 8, err


def test_ids_parse_and_bad_ids_name_the_problem() -> None:
    assert parse_ids("1-3,7,2") == [1, 2, 3, 7]
    with pytest.raises(SystemExit, match="'x' is not a unit id"):
        parse_ids("1,x")
    with pytest.raises(SystemExit, match="unit ids are 1 to 247"):
        parse_ids("0-300")


def test_a_missing_port_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match="no-such-port: No such file or directory"):
        main(["scan", "--port", str(tmp_path / "no-such-port")])


def test_scan_names_vendor_devices_by_the_profile_their_registers_fit(capsys: pytest.CaptureFixture[str]) -> None:
    profiles = load_vendor_profiles()
    noise, speed = profiles["generic-485-noise"], profiles["lambrecht-14524-wind-speed"]
    devices = {12: noise.encode({"laeq_1s": 63.4}), 20: speed.encode({"wind_speed": 7.5})}
    with RegisterSlave(devices) as slave:
        status, out, _ = scan(capsys, "--port", slave.path, "--ids", "10-21")
        assert status == 0
        assert re.search(r"unit +12: generic-485-noise \(noise\), \d+% sure", out), out
        assert re.search(r"unit +20: lambrecht-14524-wind-speed \(wind\), \d+% sure", out), out
        status, out, _ = scan(capsys, "--port", slave.path, "--ids", "11-20", "--toml")
    fragment = tomllib.loads(out)
    assert [(d["unit_id"], d["profile"]) for d in fragment["bus"][0]["device"]] == [
        (12, "generic-485-noise"), (20, "lambrecht-14524-wind-speed")
    ]
    # The fragment is a bus the gateway accepts as it stands.
    config = parse_config({"site": {"name": "test"}, **fragment})
    assert [(n.unit_id, n.profile is not None) for n in config.buses[0].nodes] == [(12, True), (20, True)]


def test_scan_sorts_out_a_mixed_simulated_bus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nodes = (
        NodeSpec("dust", 1),
        NodeSpec("noise", 4, profile="generic-485-noise"),
        NodeSpec("wind", 6, profile="calypso-ulp-ultrasonic"),
        NodeSpec("tilt", 8, profile="geokon-6150f-inclinometer"),
    )
    with Site([BusSpec("bus0", nodes, baud=9600)], tmp_path, burst=True) as site:
        status, out, _ = scan(capsys, "--port", site.paths["bus0"], "--ids", "1-9")
    assert status == 0
    assert re.search(r"unit +1: sitewatch dust node", out), out
    for unit, profile in ((4, "generic-485-noise"), (6, "calypso-ulp-ultrasonic"), (8, "geokon-6150f-inclinometer")):
        assert re.search(rf"unit +{unit}: {profile} \(\w+\), \d+% sure", out), out


@pytest.mark.slow
def test_auto_finds_a_lone_vendor_device_at_its_profiles_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # generic-485-noise ships at 4800 8N1: the profiles' defaults are among the first settings tried.
    lone = NodeSpec("noise", 12, profile="generic-485-noise", baud=4800)
    with Site([BusSpec("bus0", (lone,), baud=9600)], tmp_path, burst=True) as site:
        status, out, err = scan(capsys, "--port", site.paths["bus0"], "--auto", "--stop-after-silence", "2")
    assert status == 0, err
    found = re.search(r"found: unit 12 answers at 4800 8N1 \((\d+) requests\)", err)
    assert found, err
    assert int(found.group(1)) <= 3 * 21 + 2 * 244 + 2 * 21, err  # 85 on an idle host (likely ids, unit 12 up)
    assert re.search(r"unit +12: generic-485-noise \(noise\)", out), out


class LossySlave(RegisterSlave):
    """Stays silent to the first `lost` requests of one read (the identity read unless told), as a busy host
    or noise would."""

    def __init__(
        self, devices: dict[int, Registers], lost: int, read: tuple[int, int, int] = IDENTITY_READ
    ) -> None:
        super().__init__(devices)
        self.lost = lost
        self.read = read
        self.identity_reads = 0  # requests of `read` seen

    def answer(self, frame: bytes) -> bytes:
        # A starved slave thread can read two of the scan's requests as one frame (the scan gave up on the first
        # and sent it again): count each, answer the last, so the count is the scan's, not the host's timing.
        size = len(rtu.read_registers(1, *self.read).frame)
        if len(frame) > size and len(frame) % size == 0:
            replies = [self.answer(frame[start : start + size]) for start in range(0, len(frame), size)]
            return replies[-1]
        request = rtu.parse_request(frame)
        if not isinstance(request, rtu.FrameError) and (request.function, request.address, request.count) == self.read:
            self.identity_reads += 1
            if self.identity_reads <= self.lost:
                return b""
        return super().answer(frame)


# A sitewatch wind node's identity registers. Its input register 0 (the firmware version, 256) also reads as a
# plausible wind speed or direction to the vendor profiles: a node whose identity read is lost is misnamed.
WIND_NODE = {(rtu.READ_INPUT_REGISTERS, 0): regmap.FIRMWARE_VERSION, (rtu.READ_INPUT_REGISTERS, 1): regmap.KIND_WIND,
             (rtu.READ_HOLDING_REGISTERS, 0): 17}


def test_a_node_whose_identity_replies_are_lost_is_asked_again_patiently(capsys: pytest.CaptureFixture[str]) -> None:
    with LossySlave({17: WIND_NODE}, lost=IDENTIFY_ATTEMPTS - 1) as slave:
        status, out, err = scan(capsys, "--port", slave.path, "--ids", "17", "--latency-ms", "100")
        identity_reads = slave.identity_reads
    assert status == 0, err
    assert re.search(rf"unit +17: sitewatch wind node \(identity read answered on try {IDENTIFY_ATTEMPTS}\)", out), out
    assert identity_reads == IDENTIFY_ATTEMPTS


def test_a_unit_that_never_answers_the_identity_read_is_guessed_and_says_why(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with LossySlave({17: WIND_NODE}, lost=IDENTIFY_ATTEMPTS) as slave:
        status, out, err = scan(capsys, "--port", slave.path, "--ids", "17", "--latency-ms", "100")
        identity_reads = slave.identity_reads
    assert status == 0, err
    assert re.search(
        rf"unit +17: lambrecht-14524-wind-\w+ \(wind\), \d+% sure; no valid reply to the node_kind read in "
        rf"{IDENTIFY_ATTEMPTS} tries", out
    ), out
    assert identity_reads == IDENTIFY_ATTEMPTS  # asked no more than planned


def test_a_vendor_device_whose_profile_read_replies_are_lost_is_still_named(
    capsys: pytest.CaptureFixture[str],
) -> None:
    speed = load_vendor_profiles()["lambrecht-14524-wind-speed"]
    (read,) = speed.reads()  # not the probe's read: the unit is found, then its profile read is lost
    lost_read = (read.function, read.address, read.count)
    with LossySlave({20: dict(speed.encode({"wind_speed": 7.5}))}, lost=IDENTIFY_ATTEMPTS - 1, read=lost_read) as slave:
        status, out, err = scan(capsys, "--port", slave.path, "--ids", "20", "--latency-ms", "100")
        reads = slave.identity_reads
    assert status == 0, err
    assert re.search(r"unit +20: lambrecht-14524-wind-speed \(wind\), \d+% sure", out), out
    assert reads == IDENTIFY_ATTEMPTS
