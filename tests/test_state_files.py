"""Local state files: written whole or not at all, modes that ignore the umask, damaged ones named in one line."""

from __future__ import annotations

import os
import stat
from contextlib import contextmanager

import pytest
from plan_fixtures import inventory

from labcore import paths as paths_module
from labcore.inventory import END_LINE, load_inventory, save_inventory
from labcore.paths import LabPaths, StateFileError, write_atomic


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextmanager
def umask(value: int):
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def paths() -> LabPaths:
    return LabPaths.for_lab("rocky-lab")


@pytest.mark.parametrize("value", [0o000, 0o022, 0o277])
def test_state_files_and_folders_get_their_modes_whatever_the_umask(paths, value):
    with umask(value):
        write_atomic(paths.key_file, "private\n")
        write_atomic(paths.public_key, "public\n", mode=0o644)
        save_inventory(inventory(), paths.inventory)
    assert mode(paths.root.parent) == mode(paths.root) == 0o700  # .lab/ and .lab/<name>/
    assert mode(paths.key_file) == mode(paths.inventory) == 0o600
    assert mode(paths.public_key) == 0o644
    assert paths.key_file.read_text() == "private\n"


def test_looser_lab_folders_are_put_back_to_0700_with_a_line(paths):
    paths.ensure()
    os.chmod(paths.root, 0o755)
    os.chmod(paths.root.parent, 0o777)
    lines: list[str] = []
    paths.ensure(lines.append)
    assert mode(paths.root) == mode(paths.root.parent) == 0o700
    assert lines == [f"{paths.root.parent} was mode 0777: put back to 0700",
                     f"{paths.root} was mode 0755: put back to 0700"]


def test_a_write_that_dies_midway_leaves_the_old_file_whole_and_no_temp_file(paths, monkeypatch):
    write_atomic(paths.key_file, "the key the instances hold\n")

    def power_cut(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(paths_module.os, "fsync", power_cut)
    with pytest.raises(OSError):
        write_atomic(paths.key_file, "")
    monkeypatch.undo()
    assert paths.key_file.read_text() == "the key the instances hold\n"
    assert sorted(p.name for p in paths.root.iterdir()) == ["id_ed25519"]


def test_a_first_write_that_dies_leaves_no_empty_file(paths, monkeypatch):
    def killed(src, dst):
        raise KeyboardInterrupt  # Ctrl-C between writing and renaming

    monkeypatch.setattr(paths_module.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(paths.key_file, "key\n")
    assert not paths.key_file.exists() and list(paths.root.iterdir()) == []


def test_a_file_that_must_never_change_is_not_overwritten(paths):
    assert write_atomic(paths.secrets, "first\n", replace=False)
    assert not write_atomic(paths.secrets, "second\n", replace=False)
    assert paths.secrets.read_text() == "first\n"
    assert sorted(p.name for p in paths.root.iterdir()) == ["secrets.yaml"]


def test_forget_removes_the_labs_files_and_keeps_logs_the_lock_and_strangers(paths):
    paths.ensure()
    mine = [paths.key_file, paths.public_key, paths.secrets, paths.inventory, paths.ssh_config,
            paths.known_hosts, paths.openrc("admin"), paths.openrc("demo"), paths.root / ".inventory.yaml.x1.tmp"]
    for path in mine:
        path.write_text("x")
    paths.lock.write_text("")
    (paths.root / "notes.txt").write_text("a person's notes\n")
    paths.logs.mkdir()
    (paths.logs / "controller.log").write_text("installed\n")

    removed = paths.forget()

    assert sorted(removed) == sorted(mine)
    assert sorted(p.name for p in paths.root.iterdir()) == ["lock", "logs", "notes.txt"]
    assert (paths.logs / "controller.log").read_text() == "installed\n"
    assert paths.forget() == []  # nothing left to forget: still fine
    assert LabPaths.for_lab("never-made").forget() == []


def test_saved_inventory_is_0600_under_umask_0_and_reads_back(paths):
    with umask(0):
        save_inventory(inventory(), paths.inventory)
    assert mode(paths.inventory) == 0o600
    assert load_inventory(paths.inventory) == inventory()


def _damaged_inventories() -> dict[str, tuple[bytes, str]]:
    path = LabPaths.for_lab("model").inventory
    save_inventory(inventory(), path)
    text = path.read_text()
    return {
        "truncated": (text.encode()[: len(text) // 2], "lab up --no-ssh"),
        "cut at a node": (text[:text.index("- name: object2")].encode(), "cut short"),
        "without its end": (text.replace(END_LINE, "").encode(), "cut short"),
        "not yaml": (b"lab: rocky-lab\nnodes: [unclosed\n", "invalid YAML"),
        "not text": (b"\xff\xfe\x00garbage", "not UTF-8"),
        "a list": (b"- controller\n- object1\n" + END_LINE.encode(), "expected a mapping, found list"),
        "empty": (b"", "cut short"),
        "wrong shape": (text.replace("nodes:", "nodes_gone:").encode(), "nodes: Field required"),
        "wrong type": (text.replace("subnet_cidr: 10.0.0.0/24", "subnet_cidr: [a, b]").encode(),
                       "subnet_cidr: Input should be a valid string"),
    }


@pytest.mark.parametrize("case", sorted(_damaged_inventories()))
def test_a_damaged_inventory_is_one_line_naming_the_file_and_what_to_do(paths, case):
    content, expected = _damaged_inventories()[case]
    paths.ensure()
    paths.inventory.write_bytes(content)
    with pytest.raises(StateFileError) as refused:
        load_inventory(paths.inventory)
    message = str(refused.value)
    assert message.startswith(f"{paths.inventory} is damaged (") and expected in message
    assert "\n" not in message and len(message) < 400 and "`lab up --no-ssh`" in message
