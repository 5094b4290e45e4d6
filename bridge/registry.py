"""Writer schemas from the schema registry (confluent-kafka's ``SchemaRegistryClient``, the Confluent-
compatible API that Apicurio and Confluent Schema Registry both serve).

An unreachable registry is retried with backoff for ``registry.unavailable_timeout_s``, then the
bridge stops with nothing committed (a record is never dead-lettered because the registry was down);
rejected credentials stop it at once, naming the settings; an unknown id is the record's problem.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx2 as httpx
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random_exponential

from bridge.avro import UnknownSchema
from bridge.config import RegistrySettings
from bridge.errors import TerminalError, TransientError

log = logging.getLogger("ddbridge.registry")


def client_config(settings: RegistrySettings) -> dict[str, Any]:
    """The registry client's configuration (its own retries off: ours have the deadline)."""
    assert settings.url is not None
    conf: dict[str, Any] = {"url": settings.url, "timeout": settings.request_timeout_s, "max.retries": 0}
    if settings.username is not None and settings.password is not None:
        conf["basic.auth.user.info"] = f"{settings.username}:{settings.password.get_secret_value()}"
    if settings.ssl_ca_location is not None:
        conf["ssl.ca.location"] = str(settings.ssl_ca_location)
    if settings.ssl_certificate_location is not None and settings.ssl_key_location is not None:
        conf["ssl.certificate.location"] = str(settings.ssl_certificate_location)
        conf["ssl.key.location"] = str(settings.ssl_key_location)
    return conf


def _untrusted(exc: BaseException) -> bool:
    return isinstance(exc, httpx.TransportError) and "CERTIFICATE_VERIFY_FAILED" in str(exc)


def _unavailable(exc: BaseException) -> bool:
    if isinstance(exc, httpx.TransportError):
        return not _untrusted(exc)
    return isinstance(exc, SchemaRegistryError) and exc.http_status_code in (408, 429, 500, 502, 503, 504)


class RegistrySchemas:
    """Avro writer schemas by id, from the registry of ``settings``."""

    def __init__(self, settings: RegistrySettings, client: SchemaRegistryClient | None = None) -> None:
        self.settings = settings
        self.client = client or SchemaRegistryClient(client_config(settings))

    def avro_schema(self, schema_id: int) -> str:
        url = self.settings.url
        try:
            for attempt in Retrying(
                stop=stop_after_delay(self.settings.unavailable_timeout_s),
                wait=wait_random_exponential(multiplier=0.5, max=10),
                retry=retry_if_exception(_unavailable),
                before_sleep=lambda state: log.warning(
                    "schema registry %s unavailable (%s); retrying", url, state.outcome and state.outcome.exception()
                ),
                reraise=True,
            ):
                with attempt:
                    text = self.client.get_schema(schema_id).schema_str
                    if text is None:
                        raise UnknownSchema(schema_id)
                    return text
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                raise UnknownSchema(schema_id) from exc
            if exc.http_status_code in (401, 403):
                raise TerminalError(
                    f"the schema registry at {url} refused ddbridge ({exc.http_status_code}: {exc.error_message}); "
                    "check registry.username and registry.password (or password_file)"
                ) from exc
            if _unavailable(exc):
                raise self._gone(exc) from exc
            raise TerminalError(f"the schema registry at {url} answered {exc}") from exc
        except httpx.TransportError as exc:
            if _untrusted(exc):
                raise TerminalError(
                    f"TLS with the schema registry at {url} failed ({exc}); check registry.ssl_ca_location"
                ) from exc
            raise self._gone(exc) from exc
        raise AssertionError("unreachable")  # Retrying either returns or raises

    def _gone(self, exc: BaseException) -> TransientError:
        return TransientError(
            f"the schema registry at {self.settings.url} was unreachable for "
            f"{self.settings.unavailable_timeout_s:.0f} s ({exc}); nothing was committed — the bridge resumes "
            "from its last commit when restarted. Check registry.url and that the registry runs"
        )
