"""A client of Toxiproxy's HTTP API: TCP faults between ddbridge and the stack's components.

The stack's proxies (``LocalStack.proxies``): ``postgres``, ``kafka`` (the broker's proxied listener,
so metadata sends clients back through the proxy), ``connect`` and ``dynamodb`` (ddbsim). A toxic acts
on one direction of a proxy's connections: ``latency`` (ms, jitter), ``bandwidth`` (KB/s),
``timeout`` (stop all data, close after ms; 0 never), ``reset_peer`` (reset after ms), ``slow_close``,
``slicer``, ``limit_data``. Disabling a proxy is an outage: its connections close, new ones are refused.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Literal

import requests

Stream = Literal["upstream", "downstream"]


class Toxiproxy:
    """The API at ``url`` (e.g. ``http://127.0.0.1:58474``)."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        resp = requests.request(method, f"{self.url}{path}", json=body, timeout=self.timeout_s)
        if resp.status_code >= 300:
            raise RuntimeError(f"Toxiproxy {method} {path}: {resp.status_code} {resp.text.strip()}")
        return resp.json() if resp.content else None

    def proxies(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/proxies")
        return result

    def reset(self) -> None:
        """Every proxy enabled, every toxic removed."""
        self._call("POST", "/reset")

    def set_enabled(self, proxy: str, enabled: bool) -> None:
        self._call("POST", f"/proxies/{proxy}", {"enabled": enabled})

    def add(
        self, proxy: str, kind: str, *, stream: Stream = "downstream", toxicity: float = 1.0, **attributes: Any
    ) -> str:
        """Add a toxic (``kind`` as Toxiproxy names it); returns its name, for ``remove``."""
        name = f"{kind}_{stream}"
        body = {"name": name, "type": kind, "stream": stream, "toxicity": toxicity, "attributes": attributes}
        self._call("POST", f"/proxies/{proxy}/toxics", body)
        return name

    def remove(self, proxy: str, toxic: str) -> None:
        self._call("DELETE", f"/proxies/{proxy}/toxics/{toxic}")

    @contextlib.contextmanager
    def outage(self, proxy: str) -> Iterator[None]:
        """The component is unreachable through ``proxy`` while the block runs."""
        self.set_enabled(proxy, False)
        try:
            yield
        finally:
            self.set_enabled(proxy, True)

    @contextlib.contextmanager
    def toxic(self, proxy: str, kind: str, *, stream: Stream = "downstream", **attributes: Any) -> Iterator[None]:
        """A toxic on ``proxy`` while the block runs."""
        name = self.add(proxy, kind, stream=stream, **attributes)
        try:
            yield
        finally:
            self.remove(proxy, name)
