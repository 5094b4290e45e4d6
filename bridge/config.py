"""Configuration: pydantic models loaded from one TOML (or JSON) file, `DDBRIDGE_*` env and CLI flags.

Precedence, highest first: CLI flags (passed as ``overrides``), environment variables
(``DDBRIDGE_<SECTION>__<KEY>``, e.g. ``DDBRIDGE_KAFKA__BOOTSTRAP_SERVERS``), the config file, defaults.
The source, Kafka and Connect defaults are the local stack's ports (``ops/``); DynamoDB defaults to AWS,
so an emulator is only ever written to when ``dynamodb.endpoint_url`` names it.
"""

from __future__ import annotations

import functools
import json
import os
import re
import string
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bridge.errors import ConfigError

DEFAULT_CONFIG_FILE = "ddbridge.toml"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PART = r'(?:"([A-Za-z0-9_$]+)"|([A-Za-z_][A-Za-z0-9_$]*))'  # Kafka topic names allow these characters
_SOURCE = re.compile(_PART + r"\." + _PART)

KeyType = Literal["S", "N", "B"]

# librdkafka keys a user may not set through ``kafka.librdkafka``: the commit protocol and the group
# (``stream.loop``), the dead-letter producer's delivery guarantee, and what [kafka] settings render.
_SECURITY_KEYS = frozenset(
    {
        "security.protocol",
        "sasl.mechanism",
        "sasl.mechanisms",
        "sasl.username",
        "sasl.password",
        "ssl.ca.location",
        "ssl.certificate.location",
        "ssl.key.location",
        "ssl.key.password",
        "ssl.endpoint.identification.algorithm",
    }
)
OWNED_LIBRDKAFKA_KEYS = _SECURITY_KEYS | {
    "bootstrap.servers",
    "metadata.broker.list",
    "group.id",
    "group.instance.id",
    "group.protocol",
    "partition.assignment.strategy",
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "enable.auto.offset.store",
    "auto.offset.reset",
    "isolation.level",
    "enable.partition.eof",
    "enable.idempotence",
    "acks",
    "request.required.acks",
    "transactional.id",
    "oauth_cb",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, use_attribute_docstrings=True)

    @model_validator(mode="before")
    @classmethod
    def _secret_files(cls, data: Any) -> Any:
        """Every secret ``x`` may be given as ``x_file``: the path of a file holding it (a mounted
        Kubernetes or Docker secret); a trailing newline is dropped."""
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for key in [k for k in data if isinstance(k, str) and k.endswith("_file")]:
            name = key.removesuffix("_file")
            field = cls.model_fields.get(name)
            if field is None or not _is_secret(field.annotation):
                continue
            if data.get(name) is not None:
                raise ValueError(f"{name} and {key} are both set: keep one")
            path = Path(str(out.pop(key)))
            try:
                out[name] = path.read_text(encoding="utf-8").removesuffix("\n")
            except OSError as exc:
                raise ValueError(f"{key}: cannot read {path}: {exc.strerror}") from exc
        return out


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in get_args(annotation)


class StackPorts(_Strict):
    """Ports of the local stack; all services listen on 127.0.0.1."""

    postgres: int = 55432
    """PostgreSQL"""
    kafka: int = 59092
    """Kafka broker"""
    kafka_controller: int = 59093
    """Kafka KRaft controller"""
    kafka_sasl_ssl: int = 59094
    """Kafka's SASL_SSL (SCRAM) listener, with ACLs"""
    kafka_ssl: int = 59095
    """Kafka's mTLS listener (client certificates), with ACLs"""
    connect: int = 58083
    """Kafka Connect REST (basic auth)"""
    connect_https: int = 58443
    """Kafka Connect REST over TLS (basic auth)"""
    registry: int = 58081
    """Apicurio schema registry (Confluent-compatible API at /apis/ccompat/v7)"""
    dynalite: int = 58000
    """dynalite (default target)"""
    moto: int = 58001
    """moto server"""
    ddbsim: int = 58002
    """DynamoDB as the service behaves (latency, capacity, throttling, faults), in front of dynalite"""
    toxiproxy: int = 58474
    """Toxiproxy's API (TCP faults: latency, bandwidth, resets, outages)"""
    toxiproxy_postgres: int = 58432
    """PostgreSQL through Toxiproxy"""
    toxiproxy_kafka: int = 59096
    """Kafka through Toxiproxy (the broker advertises this port on its proxied listener)"""
    kafka_proxied: int = 59097
    """Kafka's listener behind Toxiproxy"""
    toxiproxy_connect: int = 58183
    """Kafka Connect's REST API through Toxiproxy"""
    toxiproxy_dynamodb: int = 58102
    """ddbsim (DynamoDB) through Toxiproxy"""


class StackSettings(_Strict):
    """The embedded local stack (``ddbridge stack up``)."""

    dir: Path = Path(".stack")
    """where the local stack keeps data, logs and pidfiles"""
    ports: StackPorts = StackPorts()
    """ports of the local stack's components"""
    kafka_heap_mb: int = 768
    """Kafka broker heap"""
    connect_heap_mb: int = 1024
    """Kafka Connect heap"""
    registry_heap_mb: int = 384
    """schema registry heap"""
    start_timeout_s: float = 180.0
    """how long a component may take to become healthy"""
    install_timeout_s: float = 900.0
    """how long installing a component may take"""


class SourceSettings(_Strict):
    """The PostgreSQL source."""

    dsn: SecretStr = SecretStr("postgresql://ddbridge:ddbridge@127.0.0.1:55432/ddbridge")
    """PostgreSQL connection string ddbridge reads with (secret)"""
    connect_timeout_s: int = 10
    """seconds to wait for a PostgreSQL connection"""
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = None
    """TLS of ddbridge's own connections (libpq sslmode; verify-full for production); unset: the DSN's or
    libpq's default (prefer)"""
    sslrootcert: Path | None = None
    """CA certificate(s) that signed the server's certificate (RDS: the region's bundle)"""
    sslcert: Path | None = None
    """client certificate, for certificate authentication"""
    sslkey: Path | None = None
    """client private key"""
    sslpassword: SecretStr | None = None
    """password of the client private key (secret)"""

    def libpq_options(self) -> dict[str, str]:
        """The TLS settings as libpq connection parameters (added to the DSN's)."""
        password = self.sslpassword.get_secret_value() if self.sslpassword else None
        options: dict[str, object] = {"sslmode": self.sslmode, "sslrootcert": self.sslrootcert}
        options |= {"sslcert": self.sslcert, "sslkey": self.sslkey, "sslpassword": password}
        return {k: str(v) for k, v in options.items() if v is not None}


class KafkaSettings(_Strict):
    """Kafka brokers, topics and the bridge's consumer group."""

    bootstrap_servers: str = "127.0.0.1:59092"
    """Kafka brokers, host:port[,host:port]"""
    topic_prefix: str = "ddbridge"
    """Debezium topic prefix; change topics are prefix.schema.table"""
    consumer_group: str = "ddbridge-bridge"
    """the bridge's consumer group (processes sharing it share partitions)"""
    dead_letter_topic: str = "ddbridge.dlq"
    """where records that can never be applied go, with the reason"""
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    """how every Kafka client ddbridge creates connects: PLAINTEXT, SSL (TLS, mTLS with a client
    certificate), SASL_PLAINTEXT or SASL_SSL"""
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None = None
    """SASL mechanism (SASL_* protocols): PLAIN and SCRAM take sasl_username/sasl_password; OAUTHBEARER
    signs Amazon MSK IAM tokens with the AWS credential chain (or set sasl.oauthbearer.method=oidc in
    librdkafka for an OIDC provider)"""
    sasl_username: str | None = None
    """SASL username (PLAIN, SCRAM); for Confluent Cloud the API key"""
    sasl_password: SecretStr | None = None
    """SASL password (secret; or sasl_password_file); for Confluent Cloud the API secret"""
    ssl_ca_location: Path | None = None
    """CA certificate(s) (PEM) that signed the brokers' certificates; default: the system's CAs"""
    ssl_certificate_location: Path | None = None
    """client certificate (PEM) for mTLS"""
    ssl_key_location: Path | None = None
    """client private key (PEM) for mTLS"""
    ssl_key_password: SecretStr | None = None
    """password of the client private key (secret; or ssl_key_password_file)"""
    ssl_endpoint_identification: bool = True
    """verify that a broker's certificate names the host connected to (turn off only for tests)"""
    aws_region: str | None = None
    """Amazon MSK IAM (OAUTHBEARER): the cluster's region; default the AWS chain's (AWS_REGION, profile)"""
    aws_role_arn: str | None = None
    """Amazon MSK IAM: a role to assume for the token (default: the AWS chain's own credentials)"""
    librdkafka: dict[str, SecretStr] = Field(default_factory=dict)
    """raw librdkafka settings for every client (values are treated as secrets); the keys ddbridge
    owns (offsets, commits, the group, security set above) are refused"""

    @model_validator(mode="after")
    def _security(self) -> KafkaSettings:
        sasl = self.security_protocol.startswith("SASL_")
        if sasl and self.sasl_mechanism is None:
            raise ValueError(f"security_protocol={self.security_protocol} needs sasl_mechanism")
        if not sasl and self.sasl_mechanism is not None:
            raise ValueError(f"sasl_mechanism is set but security_protocol={self.security_protocol} uses no SASL")
        if self.sasl_mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512") and not (
            self.sasl_username and self.sasl_password
        ):
            raise ValueError(f"sasl_mechanism={self.sasl_mechanism} needs sasl_username and sasl_password")
        if (self.ssl_certificate_location is None) != (self.ssl_key_location is None):
            raise ValueError("mTLS needs both ssl_certificate_location and ssl_key_location")
        tls_files = (self.ssl_ca_location, self.ssl_certificate_location, self.ssl_key_location)
        if any(tls_files) and not self.security_protocol.endswith("SSL"):
            raise ValueError(f"TLS files are set but security_protocol={self.security_protocol} uses no TLS")
        owned = sorted(k for k in self.librdkafka if k in OWNED_LIBRDKAFKA_KEYS)
        if owned:
            raise ValueError(
                f"librdkafka keys {owned} are set by ddbridge (the commit protocol, the group, or a security "
                "setting of [kafka]): remove them, or use the matching [kafka] setting"
            )
        return self


class _TlsFiles(Protocol):
    @property
    def ssl_ca_location(self) -> Path | None: ...
    @property
    def ssl_certificate_location(self) -> Path | None: ...
    @property
    def ssl_key_location(self) -> Path | None: ...


def _check_http_client(url: str | None, username: str | None, password: object, tls: _TlsFiles) -> None:
    """The basic-auth and TLS settings of an HTTP client (Kafka Connect's REST API, the schema registry)."""
    if (username is None) != (password is None):
        raise ValueError("username and password (basic auth) are set together")
    if (tls.ssl_certificate_location is None) != (tls.ssl_key_location is None):
        raise ValueError("ssl_certificate_location and ssl_key_location are set together")
    if url and (tls.ssl_ca_location or tls.ssl_certificate_location) and not url.startswith("https://"):
        raise ValueError(f"TLS files are set but url {url} is not https://")


class ConnectSettings(_Strict):
    """Kafka Connect and the Debezium PostgreSQL connector."""

    url: str = "http://127.0.0.1:58083"
    """Kafka Connect REST API"""
    username: str | None = None
    """basic-auth user of the Connect REST API"""
    password: SecretStr | None = None
    """basic-auth password (secret; or password_file)"""
    ssl_ca_location: Path | None = None
    """CA certificate(s) of an https Connect REST API; default: the system's CAs"""
    ssl_certificate_location: Path | None = None
    """client certificate (PEM) for a Connect REST API that requires mTLS"""
    ssl_key_location: Path | None = None
    """client private key (PEM, unencrypted) for that certificate"""
    connector_name: str = "ddbridge-source"
    """name of the Debezium connector"""
    slot_name: str = "ddbridge_slot"
    """PostgreSQL logical replication slot"""
    publication_name: str = "ddbridge_pub"
    """PostgreSQL publication (created by init: mapped tables + heartbeat table)"""
    snapshot_mode: Literal["no_data", "initial", "when_needed", "always", "initial_only"] = "no_data"
    """Debezium snapshot mode; no_data because the backfill owns the history"""
    heartbeat_interval_ms: int = 10_000
    """Debezium heartbeat: keeps the slot advancing on a quiet source"""
    heartbeat_table: str = "public.ddbridge_heartbeat"
    """table the heartbeat query writes to (created by init)"""
    poll_interval_ms: int = Field(50, ge=1)
    """how long Debezium waits for more changes before sending a batch (its default 500 ms is added latency)"""
    topic_partitions: int = Field(4, ge=1)
    """partitions of the change topics (the bridge's unit of scale-out)"""
    topic_retention_ms: int = Field(7 * 24 * 3600 * 1000, ge=-1)
    """retention of the change topics; the bridge must never fall further behind"""
    extra: dict[str, str] = Field(default_factory=dict, description="raw Debezium keys to add or override")
    request_timeout_s: float = 30.0
    """timeout of Kafka Connect REST calls"""
    # Database coordinates Debezium uses (it connects itself; may differ from the DSN host).
    database_host: str = "127.0.0.1"
    """PostgreSQL host as Debezium (inside Connect) reaches it"""
    database_port: int = 55432
    """PostgreSQL port as Debezium reaches it"""
    database_name: str = "ddbridge"
    """database Debezium captures"""
    database_user: str = "ddbridge"
    """PostgreSQL user of Debezium (needs REPLICATION)"""
    database_password: SecretStr = SecretStr("ddbridge")
    """its password (secret)"""
    database_sslmode: Literal["disable", "require", "verify-ca", "verify-full"] | None = None
    """TLS of Debezium's connection (database.sslmode); unset: Debezium's default (prefer)"""
    database_sslrootcert: str | None = None
    """CA file as a path on the Connect workers (database.sslrootcert)"""
    database_sslcert: str | None = None
    """client certificate, a path on the Connect workers (database.sslcert)"""
    database_sslkey: str | None = None
    """client private key, a path on the Connect workers (database.sslkey)"""
    database_sslpassword: SecretStr | None = None
    """password of that key (secret; database.sslpassword)"""
    converter: Literal["json", "avro"] = "json"
    """how Debezium serialises change events: JSON with inline schemas, or Avro through [registry]"""
    restart_failed_tasks: bool = True
    """`ddbridge stream` restarts a FAILED connector task (Connect never does), with backoff; not one
    failed by a schema the registry refused, which needs a person"""
    watch_interval_s: float = Field(15.0, gt=0)
    """how often `ddbridge stream` checks the connector's state"""
    restart_backoff_s: float = Field(10.0, gt=0)
    """wait before the first restart of a failed task; doubled after each restart, at most 10 minutes"""
    max_restarts: int = Field(10, ge=1)
    """restarts in a row (without 10 minutes of RUNNING between them) before the bridge gives up and says so"""

    @model_validator(mode="after")
    def _rest_security(self) -> ConnectSettings:
        _check_http_client(self.url, self.username, self.password, self)
        return self

    @field_validator("slot_name", "publication_name")
    @classmethod
    def _pg_identifier(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", value):
            raise ValueError("must be a lower-case PostgreSQL identifier (letters, digits, _; max 63)")
        return value


class RegistrySettings(_Strict):
    """The schema registry of Avro change events (``connect.converter = "avro"``): Apicurio, Confluent
    Schema Registry or any registry with the Confluent-compatible API."""

    url: str | None = None
    """Confluent-compatible API ddbridge reads writer schemas from (Apicurio: http://host:port/apis/ccompat/v7)"""
    connect_url: str | None = None
    """the registry as the Connect workers' Apicurio converter reaches it (its /apis/registry/v2 API);
    unset: derived from url"""
    username: str | None = None
    """basic-auth user"""
    password: SecretStr | None = None
    """basic-auth password (secret; or password_file)"""
    ssl_ca_location: Path | None = None
    """CA certificate(s) of an https registry; default: the system's CAs"""
    ssl_certificate_location: Path | None = None
    """client certificate (PEM) for a registry that requires mTLS"""
    ssl_key_location: Path | None = None
    """client private key (PEM) for that certificate"""
    request_timeout_s: float = Field(10.0, gt=0)
    """timeout of one registry request"""
    unavailable_timeout_s: float = Field(120.0, gt=0)
    """how long an unreachable registry is retried (with backoff) before the bridge stops"""

    @model_validator(mode="after")
    def _security(self) -> RegistrySettings:
        _check_http_client(self.url, self.username, self.password, self)
        return self

    def converter_url(self) -> str:
        """The URL for the Connect workers' Apicurio converter."""
        if self.connect_url:
            return self.connect_url
        if self.url and self.url.rstrip("/").endswith("/apis/ccompat/v7"):
            return self.url.rstrip("/").removesuffix("/apis/ccompat/v7") + "/apis/registry/v2"
        raise ConfigError(
            f"registry.connect_url is needed: the Connect workers' converter cannot be derived from "
            f"registry.url {self.url!r} (only from Apicurio's .../apis/ccompat/v7)"
        )


class DynamoSettings(_Strict):
    """DynamoDB: AWS by default (the region's endpoint, the AWS credential chain); a local emulator only
    when ``endpoint_url`` names it."""

    endpoint_url: str | None = None
    """DynamoDB API endpoint; unset: AWS's endpoint of the region (set it for a VPC or FIPS endpoint, or
    the local stack's http://127.0.0.1:58000)"""
    region: str = "us-east-1"
    """AWS region"""
    access_key_id: SecretStr | None = None
    """access key (secret); unset: the AWS credential chain (role, AWS_PROFILE, environment)"""
    secret_access_key: SecretStr | None = None
    """secret key (secret); set together with access_key_id"""
    profile: str | None = None
    """AWS profile of ~/.aws/config to take credentials from; unset: AWS_PROFILE or the default chain"""
    role_arn: str | None = None
    """IAM role to assume (STS AssumeRole) with those credentials; refreshed before the session expires"""
    external_id: str | None = None
    """the ExternalId the role's trust policy requires (with role_arn)"""
    role_session_name: str = "ddbridge"
    """session name of the assumed role (CloudTrail shows it)"""
    sts_endpoint_url: str | None = None
    """STS endpoint for role_arn (a VPC endpoint); unset: the region's"""
    use_fips_endpoint: bool = False
    """use the region's FIPS endpoint (dynamodb-fips.<region>.amazonaws.com) when endpoint_url is unset"""
    control_table: str = "ddbridge_control"
    """table of backfill plans and checkpoints (created by init)"""
    billing_mode: Literal["PAY_PER_REQUEST", "PROVISIONED"] = "PAY_PER_REQUEST"
    """billing mode of tables init creates"""
    lean_client: bool = True
    """PutItems and reconcile Scans skip botocore (a third of its CPU per write, a sixth per page); false: boto3"""

    @model_validator(mode="after")
    def _key_pair(self) -> DynamoSettings:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("access_key_id and secret_access_key are set together (or neither: the AWS chain)")
        if self.access_key_id is not None and self.profile is not None:
            raise ValueError("set either dynamodb.profile or dynamodb.access_key_id/secret_access_key, not both")
        if (self.external_id is not None or self.sts_endpoint_url is not None) and self.role_arn is None:
            raise ValueError(
                "dynamodb.external_id and sts_endpoint_url apply to an assumed role: set dynamodb.role_arn"
            )
        return self


class MigrationSettings(_Strict):
    """Runtime knobs; the original guide's ``migration-config.json`` names are accepted as aliases."""

    batch_size: int = Field(500, ge=1, le=10_000, validation_alias=AliasChoices("batch_size", "BatchSize"))
    """rows per backfill chunk and records per bridge batch (guide: BatchSize)"""
    max_errors: int = Field(100, ge=0, validation_alias=AliasChoices("max_errors", "MaxErrors"))
    """bad rows/records tolerated before stopping (guide: MaxErrors)"""
    retry_attempts: int = Field(8, ge=1, le=50, validation_alias=AliasChoices("retry_attempts", "RetryAttempts"))
    """attempts of a throttled or failed DynamoDB write (guide: RetryAttempts)"""
    throttle_backoff_ms: int = Field(
        100, ge=1, validation_alias=AliasChoices("throttle_backoff_ms", "ThrottleBackoffMs")
    )
    """first retry delay; grows exponentially with jitter (guide: ThrottleBackoffMs)"""
    progress_save_interval: int = Field(
        100, ge=1, validation_alias=AliasChoices("progress_save_interval", "ProgressSaveInterval")
    )
    """backfill chunks between checkpoints (guide: ProgressSaveInterval)"""
    write_concurrency: int = Field(16, ge=1, le=256)
    """concurrent conditional PutItems per process"""
    metrics_port: int = Field(59465, ge=0, le=65535, description="the backfill's /metrics port; 0 disables it")
    max_write_units_per_s: float | None = Field(None, gt=0)
    """the backfill's write budget in table write units a second (`--max-wcu`); lower when throttled"""
    target_utilization: float | None = Field(None, gt=0, le=1)
    """the backfill's budget as a share of the target table's write capacity (`--target-utilization`)"""
    tombstone_grace_days: float = Field(7.0, gt=0)
    """how long tombstones of deleted rows live before `tombstones purge` may delete them"""

    @model_validator(mode="after")
    def _one_write_budget(self) -> MigrationSettings:
        if self.max_write_units_per_s is not None and self.target_utilization is not None:
            raise ValueError(
                "set either migration.max_write_units_per_s (--max-wcu) or migration.target_utilization "
                "(--target-utilization), not both"
            )
        return self


class StreamSettings(_Strict):
    """The streaming bridge (``ddbridge stream``)."""

    metrics_port: int = Field(59464, ge=0, le=65535, description="0 disables the /metrics endpoint")
    metrics_host: str = "127.0.0.1"
    """address the /metrics endpoint listens on"""
    poll_timeout_s: float = Field(0.5, gt=0)
    """Kafka poll timeout"""
    outage_tolerance_s: float = Field(900.0, ge=0)
    """how long a write is retried through throttling, 5xx and network failures before the bridge stops
    (nothing is committed meanwhile); 0: only migration.retry_attempts"""
    start_from: Literal["earliest", "latest"] = Field(
        "earliest", description="where a consumer group with no committed offset starts"
    )
    max_dlq_ratio: float = Field(0.5, gt=0, le=1, description="stop when this share of recent events is dead")
    dlq_ratio_window: int = Field(200, ge=1)
    """events over which max_dlq_ratio is measured"""
    truncate_policy: Literal["stop", "skip"] = "stop"
    """what a TRUNCATE of a source table does: stop the bridge, or skip it"""
    status_interval_s: float = Field(2.0, gt=0)
    """seconds between status lines"""
    session_timeout_ms: int = Field(10_000, ge=1000, description="a dead member's partitions move after this")
    instance_id: str | None = Field(
        None, description="static group membership: a restart with the same id takes its partitions back at once"
    )
    stall_limit_s: float = Field(
        300.0, gt=0, description="/livez fails when the loop has not turned for this long (a hung process)"
    )


class ReconcileSettings(_Strict):
    """``ddbridge validate`` and ``ddbridge reconcile``: what is checked and what passes."""

    sample_size: int = Field(100, ge=0, description="rows compared field by field through GetItem")
    gsi_queries: int = Field(20, ge=0, description="sampled queries per GSI")
    latency_threshold_ms: float = Field(100.0, gt=0, description="p95 query latency that still passes")
    max_error_rate: float = Field(0.001, ge=0, le=1, description="dead letters + backfill errors per source row")
    in_flight_timeout_s: float = Field(120.0, ge=0, description="how long a difference may wait for the bridge")
    confirm_rounds: int = Field(2, ge=1, description="re-checks after catch-up a difference must survive")
    partition_rows: int = Field(50_000, ge=1000, description="rows per in-memory partition (the rest is on disk)")
    scan_segments: int = Field(4, ge=1, le=64, description="parallel Scan segments")
    source_readers: int = Field(
        2, ge=1, le=32, description="processes reading PostgreSQL for the full pass (one shared snapshot)"
    )
    report_differences: int = Field(50, ge=1, description="differences listed in the report")
    max_candidates: int = Field(100_000, ge=1, description="differences kept for re-check and repair")
    max_retained_wal_mb: int = Field(1024, ge=1, description="validate warns when the slot retains more WAL")
    detail_limit: int = Field(20, ge=1, description="offending keys listed per check with --detailed-errors")


class BookkeepingAttributes(_Strict):
    """Names of the attributes ddbridge adds to every item it writes."""

    source: str = "_src"
    """attribute saying who wrote the item: cdc or snapshot"""
    lsn: str = "_lsn"
    """attribute holding the PostgreSQL LSN of the change a CDC item reflects"""
    deleted: str = "_deleted"
    """attribute marking a tombstone (treat such items as absent)"""
    ttl: str = "_ttl"
    """attribute with the epoch second a tombstone may be purged (DynamoDB TTL)"""


class KeyAttribute(_Strict):
    """One DynamoDB key attribute built from source columns by a ``{column}`` template."""

    name: str
    """attribute name"""
    template: str
    """'{column}' template building the value"""
    type: Literal["S", "N"] = Field("S", description="S or N (binary keys are not supported)")

    @property
    def columns(self) -> list[str]:
        """Source columns referenced by the template, in order."""
        return template_columns(self.template)

    @model_validator(mode="after")
    def _check_template(self) -> KeyAttribute:
        cols = self.columns
        if not cols:
            raise ValueError(f"key template {self.template!r} references no column; use '{{column}}'")
        if self.type == "N" and self.template != "{" + cols[0] + "}":
            raise ValueError(f"a number key (type N) must be a single column like '{{{cols[0]}}}'")
        previous: str | None = None
        for literal, field_name, _, _ in string.Formatter().parse(self.template):
            if literal:
                previous = None
            if field_name is not None:
                if previous is not None:
                    raise ValueError(
                        f"key template {self.template!r} puts {{{previous}}} and {{{field_name}}} side by side: "
                        f"two rows can give one key (1 and 23, 12 and 3); separate them, e.g. "
                        f"'{{{previous}}}#{{{field_name}}}'"
                    )
                previous = field_name
        return self


class GsiKey(_Strict):
    """A GSI key attribute (an attribute name of the mapped item) and its DynamoDB type."""

    name: str
    """an attribute of the mapped item"""
    type: KeyType = "S"
    """S, N or B"""


class GsiSettings(_Strict):
    """A global secondary index of the target table."""

    name: str
    """index name"""
    partition_key: GsiKey
    """index partition key {name, type}"""
    sort_key: GsiKey | None = None
    """index sort key {name, type}"""
    projection: Literal["ALL", "KEYS_ONLY", "INCLUDE"] = "ALL"
    """ALL, KEYS_ONLY or INCLUDE"""
    non_key_attributes: list[str] = []
    """attributes projected with INCLUDE"""

    @model_validator(mode="after")
    def _check_projection(self) -> GsiSettings:
        if self.projection == "INCLUDE" and not self.non_key_attributes:
            raise ValueError("projection INCLUDE needs non_key_attributes")
        if self.projection != "INCLUDE" and self.non_key_attributes:
            raise ValueError("non_key_attributes is only valid with projection INCLUDE")
        return self


class TableMapping(_Strict):
    """How one source table becomes one DynamoDB table."""

    source: str = Field(description="schema-qualified source table, e.g. public.payments")
    target: str = Field(description="DynamoDB table name")
    primary_key: list[str] = Field(min_length=1, description="source primary-key columns")
    partition_key: KeyAttribute
    """DynamoDB partition key: {name, template, type}"""
    sort_key: KeyAttribute | None = None
    """DynamoDB sort key: {name, template, type}, e.g. template '{payment_date}#{payment_id}'"""
    attribute_naming: Literal["pascal", "same"] = "pascal"
    """attribute names: pascal (payment_amount -> PaymentAmount) or same"""
    attributes: dict[str, str] = Field(default_factory=dict, description="column -> attribute overrides")
    exclude_columns: list[str] = []
    """columns not copied"""
    required_columns: list[str] = Field(default_factory=list, description="columns `validate` requires non-NULL")
    date_column: str | None = None
    """column --start-date/--end-date filter on"""
    gsis: list[GsiSettings] = []
    """global secondary indexes init creates and reconcile queries"""

    @field_validator("source")
    @classmethod
    def _qualified(cls, value: str) -> str:
        # Each part is a plain identifier or a double-quoted one (dbo."Payments", as a DMS copy from SQL
        # Server leaves it); both name the table exactly as written, so the quotes are dropped.
        match = _SOURCE.fullmatch(value.strip())
        if match is None:
            raise ValueError(
                "must be 'schema.table', each part a plain identifier or a double-quoted one of letters, digits, "
                "_ and $, e.g. 'public.payments' or 'dbo.\"Payments\"'"
            )
        return ".".join(match[i] if match[i] is not None else match[i + 1] for i in (1, 3))

    @field_validator("target")
    @classmethod
    def _table_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{3,255}", value):
            raise ValueError("DynamoDB table names are 3-255 characters of A-Z a-z 0-9 _ . -")
        return value

    @model_validator(mode="after")
    def _one_item_per_row(self) -> TableMapping:
        keyed = set(self.partition_key.columns) | set(self.sort_key.columns if self.sort_key else [])
        missing = [c for c in self.primary_key if c not in keyed]
        if missing:
            raise ValueError(
                f"the DynamoDB key of {self.source} must include every primary-key column "
                f"(one item per source row); missing {missing}: add them to a key template, "
                f"e.g. sort_key.template = '{{...}}#{{{missing[0]}}}'"
            )
        names = {self.partition_key.name} | ({self.sort_key.name} if self.sort_key else set())
        if len(names) != (2 if self.sort_key else 1):
            raise ValueError("partition_key and sort_key must have different names")
        return self

    @property
    def schema_name(self) -> str:
        return self.source.split(".")[0]

    @property
    def table_name(self) -> str:
        return self.source.split(".")[1]

    def key_columns(self) -> list[str]:
        """Every source column used in the DynamoDB key (primary key plus derived parts)."""
        cols = list(self.partition_key.columns)
        if self.sort_key:
            cols += [c for c in self.sort_key.columns if c not in cols]
        return cols

    def has_derived_key(self) -> bool:
        """True when the item key uses a non-primary-key column (updates can move the item)."""
        return any(c not in self.primary_key for c in self.key_columns())

    def attribute_name(self, column: str) -> str:
        """The DynamoDB attribute that holds a source column."""
        if column in self.attributes:
            return self.attributes[column]
        if self.attribute_naming == "same":
            return column
        return "".join(part[:1].upper() + part[1:] for part in column.split("_"))


class Settings(BaseSettings):
    """All of ddbridge's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="DDBRIDGE_", env_nested_delimiter="__", extra="forbid", populate_by_name=True
    )

    source: SourceSettings = SourceSettings()
    kafka: KafkaSettings = KafkaSettings()
    connect: ConnectSettings = ConnectSettings()
    registry: RegistrySettings = RegistrySettings()
    dynamodb: DynamoSettings = DynamoSettings()
    migration: MigrationSettings = MigrationSettings()
    bookkeeping: BookkeepingAttributes = BookkeepingAttributes()
    stream: StreamSettings = StreamSettings()
    reconcile: ReconcileSettings = ReconcileSettings()
    stack: StackSettings = StackSettings()
    tables: list[TableMapping] = []

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # CLI overrides (init kwargs) > environment > config file > defaults.
        return (init_settings, env_settings, _FileSource(settings_cls, _FILE_DATA.get() or {}))

    @model_validator(mode="after")
    def _avro_needs_a_registry(self) -> Settings:
        if self.connect.converter == "avro" and not self.registry.url:
            raise ValueError('connect.converter = "avro" needs the schema registry: set registry.url')
        return self

    @model_validator(mode="after")
    def _unique_tables(self) -> Settings:
        seen: set[str] = set()
        for mapping in self.tables:
            if mapping.source in seen:
                raise ValueError(f"table {mapping.source} is mapped twice")
            seen.add(mapping.source)
        return self

    def mapping(self, source: str | None = None) -> TableMapping:
        """The mapping of a source table (``schema.table`` or bare ``table``); the only one if omitted."""
        if not self.tables:
            raise ConfigError("no [[tables]] mapping is configured: add one to the config file")
        if source is None:
            if len(self.tables) > 1:
                names = ", ".join(t.source for t in self.tables)
                raise ConfigError(f"several tables are mapped ({names}): choose one with --table")
            return self.tables[0]
        for mapping in self.tables:
            if source in (mapping.source, mapping.table_name):
                return mapping
        raise ConfigError(f"table {source!r} is not mapped; mapped: {[t.source for t in self.tables]}")


class _FileSource(PydanticBaseSettingsSource):
    """The parsed config file as a settings source, below the environment."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


_FILE_DATA: ContextVar[dict[str, Any] | None] = ContextVar("ddbridge_config_file", default=None)
_GUIDE_KEYS = {"BatchSize", "MaxErrors", "RetryAttempts", "ThrottleBackoffMs", "ProgressSaveInterval"}


def template_columns(template: str) -> list[str]:
    """Column names referenced by a ``{column}`` key template."""
    return list(_template_columns(template))


@functools.lru_cache(maxsize=1024)
def _template_columns(template: str) -> tuple[str, ...]:
    cols: list[str] = []
    for _, field_name, _, _ in string.Formatter().parse(template):
        if field_name is not None:
            if not _IDENTIFIER.match(field_name):
                raise ValueError(f"template field {{{field_name}}} is not a plain column name")
            if field_name not in cols:
                cols.append(field_name)
    return tuple(cols)


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a TOML file, or a JSON one (the guide's ``migration-config.json`` keys go to ``migration``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        if path.suffix == ".json":
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ConfigError(f"{path}: the top level must be a JSON object")
            if _GUIDE_KEYS & data.keys():
                return {"migration": data}
            return data
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.') or 'TOML'}: {exc}") from exc


def format_validation_error(exc: ValidationError, origin: str) -> str:
    """One line per invalid field, naming the dotted field path and where it came from."""
    lines = [f"invalid configuration ({origin}):"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        lines.append(f"  - {loc}: {err['msg']}")
    lines.append("fix the field(s) above; `ddbridge config show` prints the effective configuration")
    return "\n".join(lines)


def load_settings(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Load the effective settings; raises ConfigError (exit 2) naming the field and the file.

    ``path`` defaults to ``$DDBRIDGE_CONFIG`` or ``./ddbridge.toml`` when that exists.
    """
    explicit = path is not None or "DDBRIDGE_CONFIG" in os.environ
    file_path = Path(path or os.environ.get("DDBRIDGE_CONFIG", DEFAULT_CONFIG_FILE))
    data: dict[str, Any] = {}
    if file_path.exists():
        data = read_config_file(file_path)
        origin = f"file {file_path}, env DDBRIDGE_*"
    elif explicit:
        raise ConfigError(f"config file {file_path} does not exist")
    else:
        origin = "defaults, env DDBRIDGE_*"
    if overrides:
        origin += ", command-line flags"
    token = _FILE_DATA.set(data)
    try:
        return Settings(**(overrides or {}))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, origin)) from exc
    finally:
        _FILE_DATA.reset(token)


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def write_config(settings: Settings, path: Path) -> Path:
    """The settings as a config file the CLI loads (``--config``). Secrets are written in clear: for
    throw-away sandboxes (benchmarks, tests), never a config a team keeps."""
    path.write_text(json.dumps(_plain(settings.model_dump(mode="python")), indent=1))
    return path
