import errno
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bayesmetal import __version__, runs
from bayesmetal.errors import BayesmetalError
from bayesmetal.runs import RUN_MARKER, atomic_folder

HOLDER = """
import sys
from bayesmetal.runs import atomic_folder
with atomic_folder(sys.argv[1]) as folder:
    print(folder.name, flush=True)
    sys.stdin.read()
"""


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def make_run(dest: Path, text: str = "good") -> None:
    with atomic_folder(dest) as folder:
        (folder / "result.txt").write_text(text)


def test_interrupted_block_leaves_nothing_and_keeps_the_old_result(tmp_path):
    dest = tmp_path / "run"
    make_run(dest)
    with pytest.raises(KeyboardInterrupt):
        with atomic_folder(dest, overwrite=True) as folder:
            (folder / "result.txt").write_text("half")
            raise KeyboardInterrupt
    assert (dest / "result.txt").read_text() == "good"
    assert names(tmp_path) == ["run"]  # no partial, no lock file
    make_run(tmp_path / "again")  # the lock was released


def test_existing_folder_needs_overwrite_and_gets_a_marker(tmp_path):
    dest = tmp_path / "run"
    dest.mkdir()
    with pytest.raises(BayesmetalError, match="already exists"):
        with atomic_folder(dest):
            pass
    with atomic_folder(dest, overwrite=True, kind="describe") as folder:  # empty: replaceable
        (folder / "new.txt").write_text("x")
    assert names(dest) == [RUN_MARKER, "new.txt"]
    marker = json.loads((dest / RUN_MARKER).read_text())
    assert marker["kind"] == "describe" and marker["bayesmetal"] == __version__
    assert marker["created"]


@pytest.mark.parametrize("legacy", [False, True])
def test_overwrite_replaces_a_run_folder(tmp_path, legacy):
    dest = tmp_path / "run"
    if legacy:  # a fit run folder written before the marker existed
        dest.mkdir()
        for name in ("idata.nc", "config.resolved.yaml", "result.txt"):
            (dest / name).write_text("old")
    else:
        make_run(dest, "old")
    with atomic_folder(dest, overwrite=True) as folder:
        (folder / "result.txt").write_text("new")
    assert names(dest) == [RUN_MARKER, "result.txt"]
    assert (dest / "result.txt").read_text() == "new"
    assert names(tmp_path) == ["run"]


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path):
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "notes.txt").write_text("keep me")
    (dest / "idata.nc").write_text("no config beside it")
    with pytest.raises(BayesmetalError) as caught:
        with atomic_folder(dest, overwrite=True):
            raise AssertionError("the block must not run")
    assert str(caught.value) == (
        f"output folder {dest} is not a bayesmetal run folder (no {RUN_MARKER}); refusing to "
        "replace it: choose another --out or remove it yourself"
    )
    assert names(dest) == ["idata.nc", "notes.txt"]
    assert names(tmp_path) == ["mine"]


def test_overwrite_refuses_the_folder_holding_runs(tmp_path):
    models = tmp_path / "models"
    make_run(models / "first")
    make_run(models / "second")
    with pytest.raises(BayesmetalError, match="is not a bayesmetal run folder"):
        with atomic_folder(models, overwrite=True):
            pass
    assert names(models) == ["first", "second"]
    assert (models / "first" / "result.txt").read_text() == "good"


def test_dest_that_is_a_file_is_refused(tmp_path):
    dest = tmp_path / "run"
    dest.write_text("a file")
    with pytest.raises(BayesmetalError, match=f"output folder {dest} exists as a file"):
        with atomic_folder(dest, overwrite=True):
            pass
    assert dest.read_text() == "a file"


def test_second_writer_fails_cleanly_and_the_first_completes(tmp_path):
    """flock locks belong to an open file description: a second open() in one process
    conflicts like another process would."""
    dest = tmp_path / "run"
    with atomic_folder(dest) as first:
        (first / "result.txt").write_text("first")
        with pytest.raises(BayesmetalError) as caught:
            with atomic_folder(dest, overwrite=True):
                raise AssertionError("the block must not run")
        assert (first / "result.txt").read_text() == "first"
    assert str(caught.value) == (
        f"another bayesmetal process (pid {os.getpid()}, still running) is writing {dest}; "
        "wait for it or choose another --out"
    )
    assert (dest / "result.txt").read_text() == "first"
    assert names(tmp_path) == ["run"]


def test_writer_in_another_process_keeps_the_second_out(tmp_path):
    dest = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(dest)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        temp = tmp_path / holder.stdout.readline().strip()
        with pytest.raises(
            BayesmetalError, match=rf"\(pid {holder.pid}, still running\) is writing"
        ):
            with atomic_folder(dest):
                pass
        assert temp.is_dir() and not dest.exists()
    finally:
        holder.communicate("")
    assert holder.returncode == 0
    assert names(tmp_path) == ["run"]


def test_leftovers_are_removed_only_when_their_writer_is_gone(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    alive = subprocess.Popen(["sleep", "60"])
    host = socket.gethostname()
    try:
        leftovers = {
            f"{stage}-{pid}@{where}.x1y2z3": gone
            for stage in ("partial", "old")
            for pid, where, gone in (
                (dead.pid, host, True),
                (alive.pid, host, False),
                (dead.pid, "another-host", False),  # cannot be checked from here
            )
        }
        leftovers["partial-abc12345"] = False  # an older version's: no owner recorded
        for name in leftovers:
            (tmp_path / f".run.{name}").mkdir()
            (tmp_path / f".run.{name}" / "half.nc").write_text("x")
        (tmp_path / ".run.lock").write_text(f"{dead.pid}@{host}")  # unheld: a killed writer's
        make_run(tmp_path / "run")
    finally:
        alive.kill()
        alive.wait()
    kept = sorted(f".run.{name}" for name, gone in leftovers.items() if not gone)
    assert names(tmp_path) == sorted([*kept, "run"])


@pytest.mark.parametrize("during", ["block", "marker"])
def test_full_disk_leaves_the_old_run_and_no_partial(tmp_path, monkeypatch, during):
    dest = tmp_path / "run"
    make_run(dest)
    before = {name: (dest / name).read_bytes() for name in names(dest)}
    full = OSError(errno.ENOSPC, "No space left on device")

    def no_space(*args, **kwargs):
        raise full

    monkeypatch.setattr(Path, "write_text", no_space)
    with pytest.raises(OSError) as caught:
        with atomic_folder(dest, overwrite=True) as folder:
            (folder / "result.nc").write_bytes(b"half")
            if during == "block":
                (folder / "result.txt").write_text("new")
    assert caught.value is full
    monkeypatch.undo()
    assert {name: (dest / name).read_bytes() for name in names(dest)} == before
    assert names(tmp_path) == ["run"]
    make_run(tmp_path / "next")  # the lock was released


def test_filesystem_without_locks_still_writes(tmp_path, monkeypatch):
    def unsupported(*args):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(runs.fcntl, "flock", unsupported)
    with pytest.warns(UserWarning, match="cannot lock .*unprotected from a concurrent writer"):
        make_run(tmp_path / "run")
    assert (tmp_path / "run" / "result.txt").read_text() == "good"
    assert names(tmp_path) == ["run"]


def test_dest_inside_a_run_folder_is_refused(tmp_path):
    make_run(tmp_path / "n")
    dest = tmp_path / "n" / "sens" / "deeper"
    with pytest.raises(BayesmetalError) as caught:
        with atomic_folder(dest):
            raise AssertionError("the block must not run")
    assert str(caught.value) == (
        f"output folder {dest} is inside the run folder {tmp_path / 'n'}; "
        "choose an --out outside it"
    )
    assert names(tmp_path / "n") == [RUN_MARKER, "result.txt"]  # no sens/ created


@pytest.mark.parametrize("out", [".", "..", "", "sub/..", "/"])
def test_current_folder_or_its_parent_is_refused(tmp_path, monkeypatch, out):
    make_run(tmp_path / "cwd")
    monkeypatch.chdir(tmp_path / "cwd")
    with pytest.raises(BayesmetalError, match="is the current folder or one of its parents"):
        with atomic_folder(Path(out), overwrite=True):
            raise AssertionError("the block must not run")
    assert names(tmp_path) == ["cwd"]
    assert names(tmp_path / "cwd") == [RUN_MARKER, "result.txt"]


def test_relative_dest_below_the_current_folder_works(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    make_run(Path("runs") / ".." / "run")
    assert names(tmp_path) == ["run", "runs"]
    assert (tmp_path / "run" / "result.txt").read_text() == "good"


@pytest.mark.parametrize("depth", [1, 2])
def test_dest_below_a_file_is_refused(tmp_path, depth):
    (tmp_path / "afile").write_text("x")
    dest = tmp_path.joinpath("afile", *["x"] * depth)
    with pytest.raises(BayesmetalError) as caught:
        runs.check_dest(dest, overwrite=False)
    message = f"cannot create output folder {dest}: {tmp_path / 'afile'} is a file, not a folder"
    assert str(caught.value) == message
    with pytest.raises(BayesmetalError, match="is a file, not a folder"):
        make_run(dest)
    assert names(tmp_path) == ["afile"]


def test_overwriting_a_symlinked_run_replaces_the_link_only(tmp_path):
    make_run(tmp_path / "real", "old")
    (tmp_path / "run").symlink_to(tmp_path / "real")
    with atomic_folder(tmp_path / "run", overwrite=True) as folder:
        (folder / "result.txt").write_text("new")
    assert not (tmp_path / "run").is_symlink()
    assert (tmp_path / "run" / "result.txt").read_text() == "new"
    assert (tmp_path / "real" / "result.txt").read_text() == "old"  # not followed
    assert names(tmp_path) == ["real", "run"]  # no .run.old-* link left behind


def test_abandoned_old_link_is_removed_without_following_it(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    make_run(tmp_path / "real")
    old = tmp_path / f".run.old-{dead.pid}@{socket.gethostname()}.x1y2z3"
    old.symlink_to(tmp_path / "real")
    make_run(tmp_path / "run")
    assert names(tmp_path) == ["real", "run"]
    assert names(tmp_path / "real") == [RUN_MARKER, "result.txt"]


def test_broken_symlink_dest_is_refused(tmp_path):
    (tmp_path / "run").symlink_to(tmp_path / "missing")
    with pytest.raises(BayesmetalError, match="is a broken symbolic link"):
        make_run(tmp_path / "run")
    assert (tmp_path / "run").is_symlink()


LOCK_HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.ftruncate(fd, 0)
os.write(fd, sys.argv[2].encode())
print("locked", flush=True)
sys.stdin.read()
"""


def hold_lock(lock: Path, tag: str) -> subprocess.Popen:
    """A process holding `lock` with `tag` in it, as a worker forked by that writer would."""
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(lock), tag],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline() == "locked\n"
    return holder


def test_lock_held_only_by_orphans_of_a_dead_writer_is_taken_over(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan = hold_lock(tmp_path / ".run.lock", f"{dead.pid}@{socket.gethostname()}")
    try:
        with pytest.warns(UserWarning, match=rf"left behind by bayesmetal pid {dead.pid}, "):
            make_run(tmp_path / "run")
    finally:
        orphan.communicate("")
    assert (tmp_path / "run" / "result.txt").read_text() == "good"
    assert names(tmp_path) == ["run"]


def test_lock_of_a_live_or_remote_writer_is_kept(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    lock = tmp_path / ".run.lock"
    for tag, holder_text in [
        (f"{os.getpid()}@{socket.gethostname()}", f"pid {os.getpid()}, still running"),
        (f"{dead.pid}@another-host", f"pid {dead.pid} on another-host"),
        ("garbage", "pid unknown"),
    ]:
        holder = hold_lock(lock, tag)
        try:
            with pytest.raises(BayesmetalError, match=rf"\({holder_text}\) is writing"):
                make_run(tmp_path / "run")
            assert lock.read_text() == tag
        finally:
            holder.communicate("")
    assert names(tmp_path) == [".run.lock"]


def test_lock_file_removed_before_flock_is_retried_on_the_new_file(tmp_path, monkeypatch):
    """The holder may remove the lock file (and release it) between our open and flock: the
    lock then taken is on a file no longer at the path, and must be retried."""
    path = tmp_path / ".run.lock"
    real_flock = runs.fcntl.flock
    calls = []

    def holder_finishes_first(fd, operation):
        calls.append(fd)
        if len(calls) == 1:
            path.unlink()
        return real_flock(fd, operation)

    monkeypatch.setattr(runs.fcntl, "flock", holder_finishes_first)
    fd = runs._acquire_lock(path, tmp_path / "run")
    monkeypatch.undo()
    try:
        assert len(calls) == 2
        assert os.path.samestat(os.fstat(fd), path.stat())
        with pytest.raises(BayesmetalError, match="still running"):
            runs._acquire_lock(path, tmp_path / "run")
    finally:
        os.close(fd)
