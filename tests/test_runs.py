import pytest

from bayesmetal.errors import BayesmetalError
from bayesmetal.runs import atomic_folder


def test_interrupted_block_leaves_nothing_and_keeps_the_old_result(tmp_path):
    dest = tmp_path / "run"
    with atomic_folder(dest) as folder:
        (folder / "result.txt").write_text("good")
    with pytest.raises(KeyboardInterrupt):
        with atomic_folder(dest, overwrite=True) as folder:
            (folder / "result.txt").write_text("half")
            raise KeyboardInterrupt
    assert (dest / "result.txt").read_text() == "good"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_existing_folder_needs_overwrite(tmp_path):
    dest = tmp_path / "run"
    dest.mkdir()
    with pytest.raises(BayesmetalError, match="already exists"):
        with atomic_folder(dest):
            pass
    with atomic_folder(dest, overwrite=True) as folder:
        (folder / "new.txt").write_text("x")
    assert [p.name for p in dest.iterdir()] == ["new.txt"]
