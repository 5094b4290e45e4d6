"""The unit suite is hermetic: any test that opens a network socket fails (pytest-socket). Unix sockets
stay allowed (multiprocessing uses them). Tests that need a socket belong in tests/integration."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_socket import disable_socket, enable_socket


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()
