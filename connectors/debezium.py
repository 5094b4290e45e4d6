"""The Debezium PostgreSQL connector: its config (a JSON template filled from ddbridge config) and
its life cycle through the Kafka Connect REST API (idempotent register, status, delete)."""

from __future__ import annotations

import json
import re
import string
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any

import requests

from bridge.config import ConnectSettings, RegistrySettings, Settings
from bridge.errors import ConnectorError

TEMPLATE = "postgres-source.json"


def connector_config(settings: Settings) -> dict[str, str]:
    """The connector's configuration: the template with every ``${name}`` filled in."""
    c = settings.connect
    values = {
        "database_host": c.database_host,
        "database_port": str(c.database_port),
        "database_user": c.database_user,
        "database_password": c.database_password.get_secret_value(),
        "database_name": c.database_name,
        "topic_prefix": settings.kafka.topic_prefix,
        "slot_name": c.slot_name,
        "publication_name": c.publication_name,
        "table_include_list": ",".join(_regex_escape(t.source) for t in settings.tables),
        "snapshot_mode": c.snapshot_mode,
        "heartbeat_interval_ms": str(c.heartbeat_interval_ms),
        "heartbeat_table": c.heartbeat_table,
        "poll_interval_ms": str(c.poll_interval_ms),
        "topic_partitions": str(c.topic_partitions),
        "topic_retention_ms": str(c.topic_retention_ms),
    }
    raw = json.loads(resources.files("connectors").joinpath(TEMPLATE).read_text(encoding="utf-8"))
    filled = {key: string.Template(value).substitute(values) for key, value in raw.items()}
    tls = {
        "database.sslmode": c.database_sslmode,
        "database.sslrootcert": c.database_sslrootcert,
        "database.sslcert": c.database_sslcert,
        "database.sslkey": c.database_sslkey,
        "database.sslpassword": c.database_sslpassword.get_secret_value() if c.database_sslpassword else None,
    }
    filled.update({key: value for key, value in tls.items() if value is not None})
    if c.converter == "avro":
        filled.update(avro_converter(settings.registry))
        for side in ("key", "value"):
            filled.pop(f"{side}.converter.schemas.enable")
    filled.update(c.extra)
    return filled


AVRO_CONVERTER = "io.apicurio.registry.utils.converter.AvroConverter"


def avro_converter(registry: RegistrySettings) -> dict[str, str]:
    """Keys and values as Avro in the Confluent wire format (magic byte, 4-byte schema id, the datum)
    through Apicurio's converter: schemas registered by content id under ``<topic>-key``/``-value``."""
    options = {
        "apicurio.registry.url": registry.converter_url(),
        "apicurio.registry.auto-register": "true",
        "apicurio.registry.find-latest": "true",
        "apicurio.registry.as-confluent": "true",
        "apicurio.registry.use-id": "contentId",
        "apicurio.registry.headers.enabled": "false",
        # A cached schema whose periodic re-check cannot reach the registry stays in use, so a registry
        # restart does not fail the task while it only publishes schemas it has already registered.
        "apicurio.registry.fault-tolerant-refresh": "true",
    }
    if registry.username is not None and registry.password is not None:
        options |= {
            "apicurio.auth.username": registry.username,
            "apicurio.auth.password": registry.password.get_secret_value(),
        }
    config: dict[str, str] = {}
    for side in ("key", "value"):
        config[f"{side}.converter"] = AVRO_CONVERTER
        config |= {f"{side}.converter.{name}": value for name, value in options.items()}
    return config


def _regex_escape(name: str) -> str:
    # table.include.list entries are regular expressions anchored on the whole name.
    return name.replace(".", "\\.")


_SECRET_KEY = re.compile(r"password|secret|credential|token|jaas\.config|user\.info", re.IGNORECASE)


def redact(config: dict[str, str]) -> dict[str, str]:
    """A copy safe to print or log: passwords, secrets and keys masked (also among ``connect.extra``)."""
    return {k: ("********" if _SECRET_KEY.search(k) else v) for k, v in config.items()}


@dataclass
class ConnectorStatus:
    """Connector and task states as Kafka Connect reports them."""

    name: str
    state: str
    worker: str
    tasks: list[dict[str, Any]]

    @property
    def running(self) -> bool:
        return self.state == "RUNNING" and bool(self.tasks) and all(t["state"] == "RUNNING" for t in self.tasks)

    def failures(self) -> list[str]:
        """Stack traces of FAILED tasks (the first lines), for the operator."""
        return [f"task {t['id']}: {t.get('trace', '')}" for t in self.tasks if t.get("state") == "FAILED"]

    @property
    def failed(self) -> bool:
        """The connector or one of its tasks is FAILED (Connect does not restart it by itself)."""
        return self.state == "FAILED" or any(t.get("state") == "FAILED" for t in self.tasks)

    def cause(self) -> str:
        """The first line of the first failed task's trace and its innermost ``Caused by``, for a log line."""
        trace = next((t.get("trace") or "" for t in self.tasks if t.get("state") == "FAILED"), "")
        lines = [line.strip() for line in trace.splitlines() if line.strip()]
        if not lines:
            return f"connector {self.state}" if self.state == "FAILED" else "no trace"
        causes = [line for line in lines if line.startswith("Caused by:")]
        return lines[0][:200] + (f" ({causes[-1][:200]})" if causes else "")

    def advice(self) -> str | None:
        """What to do about a failure ddbridge recognises (a schema the registry refused), else None."""
        traces = [t.get("trace") or "" for t in self.tasks if t.get("state") == "FAILED"]
        refused = next((t for t in traces if _REGISTRY_REFUSAL.search(t)), None)
        if refused is None:
            return None
        subject = _SUBJECT.search(refused)
        return (
            f"the schema registry refused a new schema of {subject.group(1) if subject else 'a change topic'} "
            "(the subject's compatibility rule): a DDL changed the table in a way old records cannot be read "
            "with. Revert the DDL, or relax that subject's compatibility in the registry, then `ddbridge "
            "connector restart`; the bridge has applied everything before the change"
        )


_REGISTRY_REFUSAL = re.compile(r"RuleViolation|[Ii]ncompatible|\b409\b")
_SUBJECT = re.compile(r"([\w.-]+-(?:value|key))\b")


class ConnectClient:
    """A small client of the Kafka Connect REST API (basic auth and TLS as configured)."""

    def __init__(self, settings: ConnectSettings, timeout_s: float | None = None) -> None:
        self.url = settings.url.rstrip("/")
        self.timeout_s = settings.request_timeout_s if timeout_s is None else timeout_s
        self.session = requests.Session()
        if settings.username is not None and settings.password is not None:
            self.session.auth = (settings.username, settings.password.get_secret_value())
        if settings.ssl_ca_location is not None:
            self.session.verify = str(settings.ssl_ca_location)
        if settings.ssl_certificate_location is not None and settings.ssl_key_location is not None:
            self.session.cert = (str(settings.ssl_certificate_location), str(settings.ssl_key_location))

    def _request(self, method: str, path: str, body: Any = None) -> requests.Response:
        try:
            # verify passed per request: requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override the
            # session's, which would ignore connect.ssl_ca_location wherever those are set.
            resp = self.session.request(
                method, f"{self.url}{path}", json=body, timeout=self.timeout_s, verify=self.session.verify
            )
        except requests.exceptions.SSLError as exc:
            raise ConnectorError(
                f"TLS with Kafka Connect at {self.url} failed ({_reason(exc)}); check connect.ssl_ca_location "
                "(the CA that signed the worker's certificate) and connect.ssl_certificate_location/ssl_key_location"
            ) from exc
        except requests.RequestException as exc:
            raise ConnectorError(
                f"Kafka Connect at {self.url} did not answer {method} {path}: {type(exc).__name__}; "
                "is the worker running (`ddbridge stack status`) and connect.url right?"
            ) from exc
        if resp.status_code in (401, 403):
            raise ConnectorError(
                f"Kafka Connect at {self.url} refused {method} {path}: {resp.status_code} "
                f"{'unauthenticated' if resp.status_code == 401 else 'forbidden'}; check connect.username and "
                "connect.password (env DDBRIDGE_CONNECT__PASSWORD, or password_file)"
            )
        return resp

    def register(self, name: str, config: dict[str, str]) -> bool:
        """Create or update a connector (idempotent PUT); True when it was created."""
        resp = self._request("PUT", f"/connectors/{name}/config", config)
        if resp.status_code not in (200, 201):
            raise ConnectorError(f"Kafka Connect refused connector {name}: {resp.status_code} {_message(resp)}")
        return resp.status_code == 201

    def restart(self, name: str, *, only_failed: bool = True) -> bool:
        """Restart the connector and its tasks (only the FAILED ones by default); they resume from the
        connector's last committed offset. False when the connector does not exist."""
        flag = "true" if only_failed else "false"
        resp = self._request("POST", f"/connectors/{name}/restart?includeTasks=true&onlyFailed={flag}")
        if resp.status_code == 404:
            return False
        if resp.status_code not in (200, 202, 204):
            raise ConnectorError(f"restarting {name}: {resp.status_code} {_message(resp)}")
        return True

    def status(self, name: str) -> ConnectorStatus | None:
        """The connector's status, or None when it does not exist."""
        resp = self._request("GET", f"/connectors/{name}/status")
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise ConnectorError(f"status of {name}: {resp.status_code} {_message(resp)}")
        body = resp.json()
        return ConnectorStatus(
            name,
            body["connector"]["state"],
            body["connector"].get("worker_id", ""),
            sorted(body.get("tasks", []), key=lambda t: int(t["id"])),
        )

    def delete(self, name: str) -> bool:
        """Delete a connector; False when it did not exist. Its offsets stay in Connect."""
        resp = self._request("DELETE", f"/connectors/{name}")
        if resp.status_code == 404:
            return False
        if resp.status_code not in (200, 204):
            raise ConnectorError(f"deleting {name}: {resp.status_code} {_message(resp)}")
        return True

    def forget(self, name: str, config: dict[str, str], timeout_s: float = 60.0) -> None:
        """Delete a connector *and its stored offsets*, so that a connector registered again under the
        same name starts afresh instead of asking for a WAL position its dropped slot no longer has.

        Connect deletes offsets only of a STOPPED connector (KIP-875): an existing one is stopped; a
        deleted one whose offsets remain is re-created in the STOPPED state (KIP-980) first.
        """
        if self.status(name) is None:
            body = {"name": name, "config": config, "initial_state": "STOPPED"}
            resp = self._request("POST", "/connectors", body)
            if resp.status_code not in (200, 201, 409):
                raise ConnectorError(f"re-creating {name} to clear its offsets: {resp.status_code} {_message(resp)}")
        else:
            resp = self._request("PUT", f"/connectors/{name}/stop")
            if resp.status_code not in (200, 202, 204):
                raise ConnectorError(f"stopping {name}: {resp.status_code} {_message(resp)}")
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.status(name)
            if status is not None and status.state == "STOPPED":
                resp = self._request("DELETE", f"/connectors/{name}/offsets")
                if resp.status_code in (200, 204):
                    break
                if time.monotonic() > deadline:
                    raise ConnectorError(f"clearing the offsets of {name}: {resp.status_code} {_message(resp)}")
            elif time.monotonic() > deadline:
                raise ConnectorError(f"connector {name} did not stop (state {status.state if status else 'gone'})")
            time.sleep(0.5)
        self.delete(name)


def _reason(exc: BaseException) -> str:
    """The innermost cause of a requests error, in one line (no URL or header is in it)."""
    while exc.__context__ is not None and exc.__context__ is not exc:
        exc = exc.__context__
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__


def _message(resp: requests.Response) -> str:
    try:
        return str(resp.json().get("message", resp.text))
    except ValueError:
        return resp.text[:500]


def wait_until_streaming(settings: Settings, timeout_s: float = 90.0) -> ConnectorStatus:
    """Wait until the connector and its task are RUNNING and its replication slot is active.

    Only then are changes guaranteed to be captured; a FAILED task raises at once with its trace.
    """
    from bridge.postgres import slot_state

    client = ConnectClient(settings.connect)
    name = settings.connect.connector_name
    deadline = time.monotonic() + timeout_s
    last = "not registered"
    while time.monotonic() < deadline:
        status = client.status(name)
        if status is not None:
            if status.failures():
                raise ConnectorError(f"connector {name} FAILED:\n" + "\n".join(f[:2000] for f in status.failures()))
            slot = slot_state(settings)
            if status.running and slot is not None and slot.active:
                return status
            last = f"connector {status.state}, tasks {[t['state'] for t in status.tasks]}, " + (
                "slot active" if slot and slot.active else "slot not active yet"
            )
        time.sleep(0.5)
    raise ConnectorError(
        f"connector {name} is not streaming after {timeout_s:.0f} s ({last}); "
        f"see `ddbridge connector status` and the Connect log"
    )
