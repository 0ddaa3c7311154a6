import pytest

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def private_board_locks(tmp_path_factory, monkeypatch):
    """Board locks live per test: parallel workers reuse board names like virtual0."""
    monkeypatch.setenv("HIL_LOCK_DIR", str(tmp_path_factory.mktemp("locks")))
