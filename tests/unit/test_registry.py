"""Writer schemas from the registry: an unreachable registry is retried until
``registry.unavailable_timeout_s`` and then stops the bridge (never a dead letter); rejected credentials
and untrusted certificates stop it at once, naming the setting; an unknown id is the record's problem
(``UnknownSchema``). The registry client is a scripted stand-in: no server is involved."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest
from confluent_kafka.schema_registry.error import SchemaRegistryError

from bridge.avro import UnknownSchema
from bridge.config import RegistrySettings
from bridge.errors import TerminalError, TransientError
from bridge.registry import RegistrySchemas, client_config

URL = "https://registry.example:8443/apis/ccompat/v7"


class Schema:
    def __init__(self, text: str) -> None:
        self.schema_str = text


class Scripted:
    """``get_schema`` answers from a script: an exception to raise, or the schema text."""

    def __init__(self, *answers: BaseException | str) -> None:
        self.answers: Iterator[BaseException | str] = iter(answers)
        self.calls = 0

    def get_schema(self, schema_id: int) -> Schema:
        self.calls += 1
        answer = next(self.answers)
        if isinstance(answer, BaseException):
            raise answer
        return Schema(answer)


def _schemas(client: Scripted, timeout_s: float = 30.0) -> RegistrySchemas:
    settings = RegistrySettings(url=URL, unavailable_timeout_s=timeout_s)
    return RegistrySchemas(settings, client)  # type: ignore[arg-type]  # the stand-in has get_schema only


def _down() -> httpx.ConnectError:
    return httpx.ConnectError("[Errno 111] Connection refused")


def test_a_registry_that_comes_back_is_retried_until_it_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.sleep", lambda _s: None)
    client = Scripted(_down(), SchemaRegistryError(503, 50301, "unavailable"), '{"type": "string"}')
    assert _schemas(client).avro_schema(7) == '{"type": "string"}'
    assert client.calls == 3


def test_a_registry_down_for_longer_than_the_limit_stops_the_bridge_naming_the_setting() -> None:
    client = Scripted(*[_down() for _ in range(1000)])
    with pytest.raises(TransientError) as stopped:
        _schemas(client, timeout_s=0.3).avro_schema(7)
    message = str(stopped.value)
    assert f"the schema registry at {URL} was unreachable for 0 s" in message
    assert "nothing was committed" in message and "registry.url" in message
    assert client.calls >= 1


def test_an_unknown_id_is_the_records_problem() -> None:
    with pytest.raises(UnknownSchema):
        _schemas(Scripted(SchemaRegistryError(404, 40403, "Schema not found"))).avro_schema(99)


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_credentials_stop_at_once_naming_them(status: int) -> None:
    client = Scripted(SchemaRegistryError(status, status, "Unauthorized"), '{"type": "string"}')
    with pytest.raises(TerminalError, match=r"refused ddbridge .*registry\.username and registry\.password"):
        _schemas(client).avro_schema(1)
    assert client.calls == 1  # not retried


def test_an_untrusted_certificate_stops_at_once_naming_the_ca_setting() -> None:
    untrusted = httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed")
    client = Scripted(untrusted, '{"type": "string"}')
    with pytest.raises(TerminalError, match=r"registry\.ssl_ca_location"):
        _schemas(client).avro_schema(1)
    assert client.calls == 1


def test_the_client_configuration_carries_auth_and_tls_and_no_retries_of_its_own() -> None:
    settings = RegistrySettings(
        url=URL,
        username="bridge",
        password="s3cret",
        ssl_ca_location="/ca.pem",
        ssl_certificate_location="/c.pem",
        ssl_key_location="/k.pem",
        request_timeout_s=4,
    )
    conf: dict[str, Any] = client_config(settings)
    assert conf == {
        "url": URL,
        "timeout": 4,
        "max.retries": 0,
        "basic.auth.user.info": "bridge:s3cret",
        "ssl.ca.location": "/ca.pem",
        "ssl.certificate.location": "/c.pem",
        "ssl.key.location": "/k.pem",
    }
