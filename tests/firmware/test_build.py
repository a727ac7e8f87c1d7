"""The firmware build: real mpy-cross output, laid out per node kind, loadable by MicroPython."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from firmware import regmap
from firmware.modbus_rtu import crc16
from gateway import firmware_build
from gateway.firmware_build import FirmwareError
from tests.support.micropython import run_micropython

FIRMWARE = Path(firmware_build.__file__).resolve().parents[1] / "firmware"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    folders = firmware_build.build(out)
    assert folders == [out / kind for kind in firmware_build.KINDS]
    return out


def test_every_kind_gets_a_deployable_folder(built: Path) -> None:
    for kind in ("dust", "noise", "tilt", "wind"):
        folder = built / kind
        modules = firmware_build.kind_modules(kind)
        assert "rs485" in modules and "node" in modules
        assert sorted(p.stem for p in (folder / "firmware").iterdir()) == modules
        assert list((folder / "firmware").glob("*.py")) == []
        # main.py and boot.py stay source, byte for byte.
        assert (folder / "main.py").read_bytes() == (FIRMWARE / "main.py").read_bytes()
        assert (folder / "boot.py").read_bytes() == (FIRMWARE / "boot.py").read_bytes()
        config = json.loads((folder / "node.json").read_text())
        assert config["kind"] == kind
        assert "unit_id" not in config  # the flasher adds it per board
        assert set(config["rs485"]) == {"uart", "tx", "rx", "de"}
        assert ("relay" in config) == (kind == "dust")


def test_modules_are_real_mpy_files(built: Path) -> None:
    for mpy in (built / "dust" / "firmware").iterdir():
        data = mpy.read_bytes()
        assert data[0] == ord("M"), mpy.name
        assert data[1] == 6, mpy.name
        # The compiled module names its source as the board sees it.
        assert f"firmware/{mpy.stem}.py".encode() in data, mpy.name


def test_check_mpy_rejects_other_files(tmp_path: Path) -> None:
    bogus = tmp_path / "x.mpy"
    bogus.write_bytes(b"C\x06\x00\x1f")
    with pytest.raises(FirmwareError):
        firmware_build.check_mpy(bogus)
    bogus.write_bytes(b"M\x05\x00\x1f")
    with pytest.raises(FirmwareError):
        firmware_build.check_mpy(bogus)


def test_syntax_error_fails_the_build(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n    pass\n")
    with pytest.raises(FirmwareError, match=r"mpy-cross failed on broken\.py"):
        firmware_build.compile_module(broken, tmp_path / "broken.mpy", firmware_build.mpy_cross_command())


def test_rebuild_removes_stale_files(tmp_path: Path) -> None:
    firmware_build.build(tmp_path, ["tilt"])
    stale = tmp_path / "tilt" / "firmware" / "gone.mpy"
    stale.write_bytes(b"M\x06")
    firmware_build.build(tmp_path, ["tilt"])
    assert not stale.exists()
    assert not (tmp_path / "dust").exists()


def test_unknown_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FirmwareError, match="unknown node kind"):
        firmware_build.build(tmp_path, ["crane"])


_LOAD_AND_SERVE = """
import sys, os, binascii
os.mkdir('/board')
os.mkdir('/board/firmware')
for name, data in MODULES.items():
    f = open('/board/firmware/' + name, 'wb')
    f.write(binascii.unhexlify(data))
    f.close()
f = open('/board/main.py', 'w')
f.write(MAIN)
f.close()
sys.path.insert(0, '/board')
from firmware import regmap
from firmware.node import Node
from firmware.modbus_rtu import crc16
import main
assert main.kind_of({'kind': 'dust'}) == regmap.KIND_DUST
assert list(regmap.KIND_NAMES) == [regmap.KIND_DUST]  # the dust build carries no other kind's tables
try:
    main.kind_of({'kind': 'wind'})
    raise AssertionError('a dust build knows the wind kind')
except ValueError:
    pass
import firmware.rs485
import firmware.config_store
print('from', firmware.node.__file__ if hasattr(firmware.node, '__file__') else 'mpy')
class S:
    def read(self, bank, now_ms):
        bank.set_input('pm10', 88)
        return regmap.STATUS_OK
node = Node(regmap.KIND_DUST, S(), 0, unit_id=5)
node.sample(0)
req = bytearray([5, 4, 0, 17, 0, 1])
crc = crc16(req, 6)
req.append(crc & 0xFF)
req.append(crc >> 8)
n = node.handle(req, 8, 10)
print('reply', binascii.hexlify(bytes(node.slave.tx[:n])).decode())
"""


def test_built_modules_load_and_serve_under_micropython(built: Path) -> None:
    # Only the .mpy files go to the interpreter: no source to fall back on.
    modules = {p.name: p.read_bytes().hex() for p in (built / "dust" / "firmware").iterdir()}
    main_source = (built / "dust" / "main.py").read_text()
    code = f"MODULES = {modules!r}\nMAIN = {main_source!r}\n" + _LOAD_AND_SERVE
    proc = run_micropython(code)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "from /board/firmware/node.mpy"
    # The request read input register 17: pm10, which the sensor set to 88.
    assert regmap.find(regmap.MEASUREMENTS[regmap.KIND_DUST], "pm10")[1] == 17
    body = bytes([5, 4, 2, 0, 88])
    crc = crc16(body, len(body))
    assert lines[1] == "reply " + (body + bytes([crc & 0xFF, crc >> 8])).hex()


_BOARD_SNIPPETS = """
import os
os.mkdir('/b')
os.chdir('/b')
os.mkdir('firmware')
for name in ('main.py', 'boot.py', 'node.json', 'config.json', 'firmware/old.py', 'firmware/node.mpy'):
    f = open(name, 'w')
    f.write('x')
    f.close()
exec(PARK)
print(sorted(os.listdir()))
exec(PARK)
exec(CLEAN)
print(sorted(os.listdir()), sorted(os.listdir('firmware')))
os.rmdir('firmware')
exec(CLEAN)
print('clean without a firmware folder ok')
"""


def test_flash_snippets_do_what_they_say_under_micropython() -> None:
    code = f"PARK = {firmware_build.PARK_MAIN!r}\nCLEAN = {firmware_build.CLEAN_OLD!r}\n" + _BOARD_SNIPPETS
    proc = run_micropython(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "['boot.py', 'config.json', 'firmware', 'main_off.py', 'node.json']",
        "['boot.py', 'config.json', 'firmware', 'node.json'] []",
        "clean without a firmware folder ok",
    ]
    assert "\n" not in firmware_build.PARK_MAIN and "\n" not in firmware_build.CLEAN_OLD


def test_no_test_double_is_shipped(built: Path) -> None:
    # The fakes (clock, UART, pins, buses, FakeIO) are for the tests: a board runs none of them.
    for kind in firmware_build.KINDS:
        folder = built / kind
        assert not [p for p in folder.rglob("fakes*")]
        for path in [*folder.glob("firmware/*.mpy"), *folder.glob("*.py")]:
            if path.name != "manifest.py":
                assert b"FakeClock" not in path.read_bytes(), path
                assert b"FakeUART" not in path.read_bytes(), path


def test_each_kind_ships_only_the_modules_it_can_run(built: Path) -> None:
    assert {firmware_build.KINDS[k - 1]: m for k, m in regmap.KIND_ADAPTERS.items()} == firmware_build.ADAPTERS
    adapters = {kind: module.split(".")[1] for kind, module in firmware_build.ADAPTERS.items()}
    for kind, adapter in adapters.items():
        modules = firmware_build.kind_modules(kind)
        assert adapter in modules
        assert firmware_build.SENSOR_SETTINGS[kind]["module"].split(".")[1] in modules
        assert [m for m in adapters.values() if m in modules] == [adapter], kind
        assert [m for m in modules if m.startswith(regmap.KIND_PREFIX)] == [regmap.KIND_PREFIX + kind], kind
    assert "sds011" in firmware_build.kind_modules("dust")  # node.json may choose it: a lazy import counts
    assert "aweight" not in firmware_build.kind_modules("dust")


def _manifest_calls(text: str) -> list[tuple[str, tuple[object, ...], dict[str, object]]]:
    calls: list[tuple[str, tuple[object, ...], dict[str, object]]] = []

    def record(name: str) -> object:
        return lambda *args, **kwargs: calls.append((name, args, kwargs))

    # A manifest is Python run with the manifest functions in scope (MicroPython's tools/manifestfile.py).
    scope = {name: record(name) for name in ("include", "package", "module", "freeze", "require", "metadata")}
    exec(compile(text, "manifest.py", "exec"), scope)
    return calls


def test_manifest_freezes_exactly_the_shipped_modules(built: Path) -> None:
    for kind in firmware_build.KINDS:
        folder = built / kind
        calls = _manifest_calls((folder / "manifest.py").read_text())
        assert calls[0] == ("include", ("$(PORT_DIR)/boards/manifest.py",), {})
        assert len(calls) == 2
        name, args, kwargs = calls[1]
        assert (name, args) == ("package", ("firmware",))
        files = kwargs["files"]
        assert isinstance(files, tuple)
        shipped = sorted(p.stem for p in (folder / "firmware").glob("*.mpy"))
        assert sorted(str(f).removesuffix(".py") for f in files) == shipped
        # Paths in a manifest are relative to it: base_path/firmware/<file> must be the source.
        base = folder / str(kwargs["base_path"]) / "firmware"
        assert sorted(p.name for p in base.iterdir()) == sorted(str(f) for f in files)
        for f in files:
            assert (base / str(f)).read_bytes() == (FIRMWARE / str(f)).read_bytes()


def test_build_command_says_how_to_make_a_frozen_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.ops.cli import main as cli_main

    assert cli_main(["firmware", "build", "--out", str(tmp_path), "--kind", "wind"]) == 0
    out = capsys.readouterr().out
    assert f"FROZEN_MANIFEST={tmp_path.resolve()}/<kind>/manifest.py" in out
    assert "BOARD=ESP32_GENERIC" in out
