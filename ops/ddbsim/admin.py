"""A client of the service-like DynamoDB layer's admin API (tests, benchmarks, fault runs)."""

from __future__ import annotations

from typing import Any

import requests


class DdbsimAdmin:
    """Change the layer's profile at runtime and read what it measured."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/") + "/_ddbsim"
        self.timeout_s = timeout_s

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Apply a partial profile (see ``ops.ddbsim.service.Profile``); returns the whole profile."""
        return self._post("profile", changes)

    def stats(self) -> dict[str, Any]:
        """Units consumed, throttles by reason, injected faults (``tables`` keyed by table name)."""
        resp = requests.get(self.url, timeout=self.timeout_s)
        resp.raise_for_status()
        stats: dict[str, Any] = resp.json()["stats"]
        return stats

    def reset(self, **profile: Any) -> dict[str, Any]:
        """The default (pass-through) profile plus ``profile``, with fresh statistics and buckets."""
        return self._post("reset", profile)

    def _post(self, path: str, profile: dict[str, Any]) -> dict[str, Any]:
        resp = requests.post(f"{self.url}/{path}", json=profile, timeout=self.timeout_s)
        if resp.status_code != 200:
            raise ValueError(f"ddbsim refused the profile {profile}: {resp.json().get('message')}")
        answer: dict[str, Any] = resp.json()
        return answer
