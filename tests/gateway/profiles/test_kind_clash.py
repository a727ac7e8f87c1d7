"""Issue 10 review: a kind profile in a folder that clashes with a shipped kind (its name, its node_kind code)
is refused naming the file, and installs nothing (the process-wide registries stay as they were)."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware import regmap
from gateway.profiles.kinds import KindProfileError, install_kinds, kind_profiles
from tests.gateway.profiles.test_kind_profiles import KIND_MODULE, PROFILE, write


def snapshot() -> tuple[dict[object, object], dict[object, object], list[str]]:
    return dict(regmap.KIND_CODES), dict(regmap.KIND_NAMES), sorted(kind_profiles())


def test_a_folder_kind_named_like_a_shipped_kind_is_refused(tmp_path: Path) -> None:
    before = snapshot()
    folder = tmp_path / "kinds"
    folder.mkdir()
    (folder / "kind_dust.py").write_text(KIND_MODULE.replace('"pit"', '"dust"').replace("CODE = 202", "CODE = 250"))
    (folder / "dust.toml").write_text(PROFILE.replace('kind = "pit"', 'kind = "dust"'))
    with pytest.raises(KindProfileError, match=rf"{folder / 'dust.toml'}: kind: 'dust' is already defined by "):
        install_kinds([folder])
    assert snapshot() == before and regmap.KIND_CODES["dust"] == regmap.KIND_DUST


def test_a_folder_kind_taking_a_shipped_node_kind_code_is_refused(tmp_path: Path) -> None:
    before = snapshot()
    folder = tmp_path / "kinds"
    write(folder, module=KIND_MODULE.replace("CODE = 202", f"CODE = {regmap.KIND_WIND}"))
    with pytest.raises(KindProfileError, match=rf"{folder / 'pit.toml'}: kind pit \({regmap.KIND_WIND}\) clashes "
                                               r"with kind wind"):
        install_kinds([folder])
    assert snapshot() == before and "pit" not in regmap.KIND_CODES


def test_a_firmware_module_that_does_not_import_is_refused_naming_it(tmp_path: Path) -> None:
    before = snapshot()
    folder = tmp_path / "kinds"
    write(folder, module=KIND_MODULE.replace("U16 = 0\n", "from firmware import no_such_module\nU16 = 0\n"))
    with pytest.raises(KindProfileError, match=rf"{folder / 'kind_pit.py'}: .*no_such_module"):
        install_kinds([folder])
    assert snapshot() == before
