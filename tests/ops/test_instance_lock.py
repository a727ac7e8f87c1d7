"""One gateway per queue and store: a second one is refused and told which process holds them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.ops.instance_lock import InstanceLock, InstanceLockError, InstanceLocks
from gateway.ops.startup import EXIT_IN_USE
from tests.ops.service_process import Running, gateway_toml


def test_a_second_lock_on_the_same_file_is_refused_naming_the_holder(tmp_path: Path) -> None:
    queue = tmp_path / "queue.sqlite3"
    first = InstanceLock(queue, "queue")
    first.acquire()
    with pytest.raises(InstanceLockError) as refused:
        InstanceLock(queue, "queue").acquire()  # flock is per open file: the same process is refused too
    assert refused.value.holder == os.getpid()
    assert f"process {os.getpid()}" in str(refused.value) and str(queue) in str(refused.value)
    first.release()
    again = InstanceLock(queue, "queue")
    again.acquire()  # released: free again
    again.release()


def test_locks_are_all_or_none(tmp_path: Path) -> None:
    store, queue = tmp_path / "store.sqlite3", tmp_path / "queue.sqlite3"
    other = InstanceLock(queue, "queue")
    other.acquire()
    both = InstanceLocks([(store, "store"), (queue, "queue")])
    with pytest.raises(InstanceLockError, match="queue is in use"):
        both.acquire()
    alone = InstanceLock(store, "store")
    alone.acquire()  # the store's lock taken before the refusal was given back
    alone.release()
    other.release()


def test_a_lock_folder_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InstanceLockError, match="cannot create the queue's lock file"):
        InstanceLock(tmp_path / "no-such-folder" / "queue.sqlite3", "queue").acquire()


def test_a_second_gateway_with_the_same_configuration_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(gateway_toml(tmp_path, str(tmp_path / "ttyRS485")))
    first = Running("run", "-c", str(config))
    try:
        first.wait_for(r"ready \(")
        second = Running("run", "-c", str(config))
        assert second.exit_status() == EXIT_IN_USE
        refusal = second.wait_for(r"ERROR")
        assert f"process {first.pid} (sitewatch run -c {config})" in refusal, refusal
        assert "store" in refusal and "one gateway per store" in refusal
        assert not any("Traceback" in line for line in second.lines)
        assert first.proc.poll() is None  # the first one goes on
    finally:
        assert first.stop() == 0


def test_sharing_only_the_store_is_refused_too(tmp_path: Path) -> None:
    """Two configurations with their own queues but one store would still write the same rows twice."""
    store = str(tmp_path / "store.sqlite3")
    (tmp_path / "a.toml").write_text(gateway_toml(tmp_path, str(tmp_path / "ttyA"), store=store))
    (tmp_path / "b.toml").write_text(
        gateway_toml(tmp_path, str(tmp_path / "ttyB"), store=store, queue=str(tmp_path / "b-queue.sqlite3"))
    )
    first = Running("run", "-c", str(tmp_path / "a.toml"))
    try:
        first.wait_for(r"ready \(")
        second = Running("run", "-c", str(tmp_path / "b.toml"))
        assert second.exit_status() == EXIT_IN_USE
        assert "the store is in use by process" in second.wait_for("ERROR")
    finally:
        assert first.stop() == 0


def test_the_lock_goes_with_a_killed_gateway(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(gateway_toml(tmp_path, str(tmp_path / "ttyRS485")))
    first = Running("run", "-c", str(config))
    first.wait_for(r"ready \(")
    first.kill()  # SIGKILL: no clean-up ran; the kernel dropped the flock
    second = Running("run", "-c", str(config))
    try:
        second.wait_for(r"ready \(")
    finally:
        assert second.stop() == 0


def test_a_symlink_to_the_same_file_is_the_same_instance(tmp_path: Path) -> None:
    """Audit: a second configuration naming the store through a symlink (say /data/store.sqlite3 -> the SD
    card's file) opened the same database beside its own lock file, and both gateways ran."""
    (tmp_path / "real").mkdir()
    (tmp_path / "link").mkdir()
    real = tmp_path / "real" / "store.sqlite3"
    linked = tmp_path / "link" / "store.sqlite3"
    linked.symlink_to(real)  # dangling until the first gateway makes the file: it must not matter
    first = InstanceLock(real, "store")
    first.acquire()
    try:
        with pytest.raises(InstanceLockError, match="store is in use"):
            InstanceLock(linked, "store").acquire()
    finally:
        first.release()


def test_one_gateways_store_is_another_ones_queue(tmp_path: Path) -> None:
    shared = tmp_path / "shared.sqlite3"
    store = InstanceLock(shared, "store")
    store.acquire()
    try:
        with pytest.raises(InstanceLockError, match="queue is in use"):
            InstanceLock(shared, "queue").acquire()
    finally:
        store.release()
