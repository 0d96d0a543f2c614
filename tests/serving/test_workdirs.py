"""The per-process folder: made and locked on first use, removed at exit, reclaimed by the
next server when its process was killed, never taken from a live process."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

from kservehelper.serving import workdirs

# A process that makes its folder (with a file in it) and then ends as asked.
CHILD = textwrap.dedent(
    """
    import os, sys, time
    from kservehelper.serving import workdirs
    folder = workdirs.process_folder()
    (workdirs.subfolder("outputs") / "result.bin").write_bytes(b"x")
    print(folder, flush=True)
    if sys.argv[1] == "killed":
        os._exit(1)  # like SIGKILL: no cleanup at all
    if sys.argv[1] == "alive":
        sys.stdin.read()  # until the test closes stdin
    """
)


def _child(mode: str, tmp: pathlib.Path) -> subprocess.Popen[str]:
    env = {**os.environ, "TMPDIR": str(tmp)}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, mode],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_a_process_removes_its_folder_when_it_exits(tmp_path: pathlib.Path) -> None:
    child = _child("exits", tmp_path)
    folder = pathlib.Path(child.communicate(timeout=60)[0].strip())
    assert folder.parent == tmp_path and folder.name.startswith(f"kservehelper-{child.pid}-")
    assert not folder.exists()


def test_folders_of_dead_processes_are_reclaimed_and_live_ones_kept(
    tmp_path: pathlib.Path,
) -> None:
    killed = _child("killed", tmp_path)
    dead_folder = pathlib.Path(killed.communicate(timeout=60)[0].strip())
    assert (dead_folder / "outputs" / "result.bin").exists()
    alive = _child("alive", tmp_path)
    assert alive.stdout is not None
    live_folder = pathlib.Path(alive.stdout.readline().strip())
    unrelated = tmp_path / "kservehelper-not-ours"  # no lock file: not one of ours
    unrelated.mkdir()
    try:
        assert workdirs.remove_stale_folders(tmp_path) == [dead_folder]
        assert not dead_folder.exists()
        assert (live_folder / "outputs" / "result.bin").exists()
        assert unrelated.exists()
    finally:
        alive.communicate("", timeout=60)
    assert not live_folder.exists()


def test_request_folders_live_in_the_process_folder() -> None:
    first, second = workdirs.request_folder(), workdirs.request_folder()
    assert first != second
    assert first.parent == second.parent == workdirs.process_folder() / "requests"
    assert (workdirs.process_folder() / workdirs.LOCK_NAME).exists()
