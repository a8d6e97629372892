"""The one atomic writer (adamergex.files): output appears complete or not at all, and never overwrites
without force."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from adamergex.errors import OutputExistsError, StorageError
from adamergex.files import atomic_directory, atomic_file, atomic_write_bytes, discard_directory


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_atomic_file_appears_only_when_the_block_finishes(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "model.bin"
    with pytest.raises(RuntimeError), atomic_file(target) as stream:
        stream.write(b"half")
        raise RuntimeError("killed")
    assert not target.exists() and _leftovers(target.parent) == []
    with atomic_file(target) as stream:
        stream.write(b"part one, ")
        assert not target.exists()  # nothing visible while the block runs
        stream.write(b"part two")
    assert target.read_bytes() == b"part one, part two"


def test_atomic_file_refuses_an_existing_file_without_force(tmp_path: Path) -> None:
    target = atomic_write_bytes(tmp_path / "a.bin", b"old")
    with pytest.raises(OutputExistsError, match=r"--force / force=True"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    atomic_write_bytes(target, b"new", force=True)
    assert target.read_bytes() == b"new"


def test_atomic_file_mode_follows_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o027)
    try:
        with atomic_file(tmp_path / "f") as stream:
            stream.write(b"x")
    finally:
        os.umask(previous)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o640


def test_atomic_directory_turns_a_full_disk_into_one_line_naming_the_action(tmp_path: Path) -> None:
    out = tmp_path / "entry"
    full = pytest.raises(StorageError, match=r"^cannot fill the cache entry .*entry: No space left")
    with full, atomic_directory(out, action="fill the cache entry"):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert not out.exists() and _leftovers(tmp_path) == []


def test_atomic_directory_keeps_the_other_writers_folder_when_it_appears_first(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(OutputExistsError, match="appeared while writing"), atomic_directory(out) as tmp:
        (tmp / "mine").write_text("mine")
        out.mkdir()
        (out / "theirs").write_text("theirs")
    assert sorted(p.name for p in out.iterdir()) == ["theirs"]
    assert _leftovers(tmp_path) == []


def test_discard_directory_removes_without_leftovers_and_accepts_a_missing_folder(tmp_path: Path) -> None:
    folder = tmp_path / "entry"
    (folder / "deep").mkdir(parents=True)
    (folder / "deep" / "f").write_text("x")
    discard_directory(folder)
    assert list(tmp_path.iterdir()) == []
    discard_directory(folder)  # already gone: no error
