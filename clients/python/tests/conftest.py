"""Fixtures: a fresh broker per test (the real binary, see helpers.py)."""

from __future__ import annotations

import pytest

from helpers import Broker, Proxy, herald_bin


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "v2: needs a broker that implements protocol version 2")


@pytest.fixture(scope="session")
def binary():
    path = herald_bin()
    if not path.exists():
        pytest.fail(
            f"no herald binary at {path}: run `cargo build --release -p herald` "
            "or set HERALD_BIN",
            pytrace=False,
        )
    return path


@pytest.fixture
def broker(binary, tmp_path):
    """A broker on a free port with a fresh data directory."""
    b = Broker(tmp_path / "data")
    yield b
    b.close()


@pytest.fixture
def addr(broker):
    return broker.addr


@pytest.fixture
def proxy(broker):
    """A TCP proxy in front of ``broker`` that can cut connections."""
    p = Proxy(broker.addr)
    yield p
    p.close()
