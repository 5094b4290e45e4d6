"""Two processes on one host asking for the same metrics port get a clear configuration error."""

from __future__ import annotations

import socket

import pytest

from bridge import metrics
from bridge.errors import ConfigError


def test_a_metrics_port_in_use_names_the_setting_to_change() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError) as error:
            metrics.serve(port, "127.0.0.1", "stream.metrics_port")
    message = str(error.value)
    assert f"127.0.0.1:{port}" in message
    assert "stream.metrics_port" in message and "DDBRIDGE_STREAM__METRICS_PORT" in message
