"""The local stack without Docker: PostgreSQL, Kafka (KRaft), Kafka Connect + Debezium, the schema
registry, dynalite, moto, ddbsim (DynamoDB as the service behaves) and Toxiproxy (TCP faults).

Everything listens on 127.0.0.1 and keeps data, logs and pidfiles under ``stack.dir`` (``.stack/``).
``up`` is idempotent (a healthy component is left alone), ``down`` stops exactly the PIDs that
``up`` recorded, ``status`` reports component, port, PID and health.
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import psycopg
import requests
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError
from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialUpsertion,
)

from bridge.config import StackSettings
from bridge.errors import StackError
from ops import install, procs
from ops.certs import KEYSTORE_PASSWORD, ensure_tls_files

DEBEZIUM_PLUGIN_CLASS = "io.debezium.connector.postgresql.PostgresConnector"
OPS_DIR = Path(__file__).resolve().parent

# The secured side of the local stack, for tests of production-shaped security: Kafka's SASL_SSL and
# mTLS listeners authorise with ACLs (the PLAINTEXT listener's ANONYMOUS stays a super user, so the
# unsecured side works as before), and a PostgreSQL role that may only connect over TLS.
SCRAM_USERS = {"ddbridge": "ddbridge-scram-secret", "intruder": "intruder-scram-secret"}
TLS_CLIENTS = ("ddbridge", "intruder")
PG_TLS_ROLE, PG_TLS_PASSWORD = "ddbridge_tls", "ddbridge-tls-secret"
REGISTRY_DB = "ddbridge_registry"  # the schema registry's storage
# Kafka Connect's REST API (HTTP and HTTPS listeners) answers only these users (basic auth).
CONNECT_USERS = {"ddbridge": "ddbridge-connect-secret"}
_HBA_BEGIN, _HBA_END = "# ddbridge local stack: TLS-only role (begin)", "# ddbridge local stack (end)"


def kafka_cluster_id(random_bytes: Callable[[], bytes] = lambda: uuid.uuid4().bytes) -> str:
    """A random KRaft cluster id, never starting with "-" (the storage tool would read it as an option).

    Kafka's own ``Uuid.randomUuid`` skips such ids for the same reason.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(random_bytes()).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass
class Component:
    """One server of the stack."""

    name: str
    port: int
    log: Path
    pidfile: Path
    marker: str
    start: Callable[[], None]
    health: Callable[[], str | None]  # None when healthy, else what is wrong
    graceful: signal.Signals = signal.SIGTERM
    stop_timeout_s: float = 30.0
    hint: str = ""
    after: list[str] = field(default_factory=list)

    def pid(self) -> int | None:
        return procs.tracked_pid(self.pidfile, self.marker)


@dataclass
class ComponentStatus:
    name: str
    port: int
    pid: int | None
    healthy: bool
    detail: str
    log: str


class LocalStack:
    """Install, start, check and stop the local stack described by ``StackSettings``."""

    def __init__(
        self,
        settings: StackSettings,
        db_user: str = "ddbridge",
        db_password: str = "ddbridge",
        db_name: str = "ddbridge",
    ) -> None:
        self.settings = settings
        self.root = settings.dir.resolve()
        self.ports = settings.ports
        self.db_user, self.db_password, self.db_name = db_user, db_password, db_name
        self.logs = self.root / "logs"
        self.pids = self.root / "pids"
        self.jvm = self.root / "jvm"
        self.components = {c.name: c for c in self._components()}

    # -- component definitions -------------------------------------------------------------

    def _components(self) -> list[Component]:
        p = self.ports
        root = str(self.root)
        return [
            Component(
                "postgres",
                p.postgres,
                self.logs / "postgres.log",
                self.pids / "postgres.pid",
                root,
                self._start_postgres,
                self._health_postgres,
                signal.SIGINT,
                60.0,
                "PostgreSQL 15+ with wal_level=logical",
            ),
            Component(
                "kafka",
                p.kafka,
                self.logs / "kafka.log",
                self.pids / "kafka.pid",
                root,
                self._start_kafka,
                self._health_kafka,
                signal.SIGTERM,
                60.0,
                "Apache Kafka, single-node KRaft",
            ),
            Component(
                "connect",
                p.connect,
                self.logs / "connect.log",
                self.pids / "connect.pid",
                root,
                self._start_connect,
                self._health_connect,
                signal.SIGTERM,
                60.0,
                "Kafka Connect with the Debezium PostgreSQL plugin",
                after=["kafka"],
            ),
            Component(
                "registry",
                p.registry,
                self.logs / "registry.log",
                self.pids / "registry.pid",
                root,
                self._start_registry,
                self._health_registry,
                signal.SIGTERM,
                30.0,
                "Apicurio schema registry (Java 17+), stored in the stack's PostgreSQL",
                after=["postgres"],
            ),
            Component(
                "dynalite",
                p.dynalite,
                self.logs / "dynalite.log",
                self.pids / "dynalite.pid",
                root,
                self._start_dynalite,
                self._dynamo_health(p.dynalite),
                signal.SIGTERM,
                15.0,
                "DynamoDB API (dynalite, on disk)",
            ),
            Component(
                "moto",
                p.moto,
                self.logs / "moto.log",
                self.pids / "moto.pid",
                f"moto.server -H 127.0.0.1 -p {p.moto}",
                self._start_moto,
                self._dynamo_health(p.moto),
                signal.SIGINT,
                15.0,
                "DynamoDB API (moto server, contract tests)",
            ),
            Component(
                "ddbsim",
                p.ddbsim,
                self.logs / "ddbsim.log",
                self.pids / "ddbsim.pid",
                f"ops.ddbsim.server --port {p.ddbsim}",
                self._start_ddbsim,
                self._dynamo_health(p.ddbsim),
                signal.SIGTERM,
                15.0,
                "DynamoDB as the service behaves, in front of dynalite (ops/ddbsim)",
                after=["dynalite"],
            ),
            Component(
                "toxiproxy",
                p.toxiproxy,
                self.logs / "toxiproxy.log",
                self.pids / "toxiproxy.pid",
                str(self.root / "toxiproxy" / "bin" / "server"),
                self._start_toxiproxy,
                self._health_toxiproxy,
                signal.SIGTERM,
                15.0,
                "Toxiproxy (TCP faults) in front of PostgreSQL, Kafka, Connect and ddbsim",
            ),
        ]

    # PostgreSQL ------------------------------------------------------------------------------

    @property
    def pg_data(self) -> Path:
        return self.root / "postgres" / "data"

    def _pg_owner(self) -> tuple[list[str], int | None, int | None]:
        """Command prefix and uid/gid to run PostgreSQL as (the postgres user when we are root)."""
        if os.geteuid() != 0:
            return [], None, None
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise StackError("running as root but there is no 'postgres' user: install 'postgresql'") from exc
        return ["runuser", "-u", "postgres", "--"], entry.pw_uid, entry.pw_gid

    def _chown_tree(self, path: Path, uid: int | None, gid: int | None) -> None:
        if uid is None or gid is None:
            return
        for dirpath, _, files in os.walk(path):
            os.chown(dirpath, uid, gid)
            for name in files:
                os.chown(os.path.join(dirpath, name), uid, gid)

    def _start_postgres(self) -> None:
        bindir = install.ensure_postgres(self.settings.install_timeout_s)
        prefix, uid, gid = self._pg_owner()
        pg_root = self.root / "postgres"
        run_dir = pg_root / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.components["postgres"].log
        log.touch()
        self._chown_tree(pg_root, uid, gid)
        if uid is not None and gid is not None:
            os.chown(log, uid, gid)
            self._check_traversable(pg_root, uid)
        if not (self.pg_data / "PG_VERSION").exists():
            out = subprocess.run(
                [
                    *prefix,
                    str(bindir / "initdb"),
                    "-D",
                    str(self.pg_data),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                ],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            if out.returncode != 0:
                raise StackError(f"initdb failed: {out.stderr.strip() or out.stdout.strip()}")
            conf = self.pg_data / "postgresql.conf"
            with conf.open("a") as fh:
                fh.write(
                    "\n# ddbridge local stack\n"
                    "listen_addresses = '127.0.0.1'\n"
                    f"unix_socket_directories = '{run_dir}'\n"
                    "wal_level = logical\nmax_wal_senders = 32\nmax_replication_slots = 32\n"
                    "max_connections = 200\nshared_buffers = 256MB\n"
                    "fsync = off\nfull_page_writes = off\n"
                    "max_slot_wal_keep_size = 4GB\nwal_sender_timeout = 60s\n"
                )
        tls = ensure_tls_files(self.root / "tls", TLS_CLIENTS)
        pg_tls = pg_root / "tls"
        pg_tls.mkdir(exist_ok=True)
        for source, name in ((tls.server_cert, "server.crt"), (tls.server_key, "server.key"), (tls.ca, "ca.crt")):
            (pg_tls / name).write_bytes(source.read_bytes())
            (pg_tls / name).chmod(0o600)
        self._chown_tree(pg_tls, uid, gid)
        self._write_hba()
        # The port is passed on the command line so a changed config takes effect on restart. So is
        # synchronous_commit: with it off (as the config written above once said), logical decoding
        # waits for the WAL writer to flush each change (up to 3 x wal_writer_delay, 600 ms); fsync
        # stays off, so a synchronous commit costs a write(), not a disk flush.
        procs.spawn(
            [
                str(bindir / "postgres"),
                "-D",
                str(self.pg_data),
                "-p",
                str(self.ports.postgres),
                "-c",
                "synchronous_commit=on",
                "-c",
                "ssl=on",
                "-c",
                f"ssl_cert_file={pg_tls / 'server.crt'}",
                "-c",
                f"ssl_key_file={pg_tls / 'server.key'}",
            ],
            self.components["postgres"].pidfile,
            log,
            user=uid,
            group=gid,
            cwd=pg_root,
        )

    def _write_hba(self) -> None:
        """Let the TLS-only role in over TLS with its password, never without TLS (first match wins)."""
        hba = self.pg_data / "pg_hba.conf"
        text = hba.read_text()
        if _HBA_BEGIN in text:
            text = text.split(_HBA_BEGIN)[0] + text.split(_HBA_END, 1)[1].lstrip("\n")
        block = (
            f"{_HBA_BEGIN}\n"
            f"hostssl all {PG_TLS_ROLE} 127.0.0.1/32 scram-sha-256\n"
            f"hostssl replication {PG_TLS_ROLE} 127.0.0.1/32 scram-sha-256\n"
            f"hostnossl all {PG_TLS_ROLE} 127.0.0.1/32 reject\n"
            f"hostnossl replication {PG_TLS_ROLE} 127.0.0.1/32 reject\n"
            f"{_HBA_END}\n"
        )
        hba.write_text(block + text)

    def _check_traversable(self, path: Path, uid: int) -> None:
        for parent in [path, *path.parents]:
            st = parent.stat()
            if st.st_uid != uid and not st.st_mode & 0o001:
                raise StackError(
                    f"the postgres user cannot enter {parent}: run `chmod o+x {parent}` or set stack.dir "
                    "to a directory it can reach"
                )

    def pg_conninfo(self, dbname: str = "postgres", user: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.ports.postgres} dbname={dbname} user={user} connect_timeout=3"

    def _health_postgres(self) -> str | None:
        try:
            with psycopg.connect(self.pg_conninfo(), autocommit=True) as conn:
                level = conn.execute("SHOW wal_level").fetchone()
        except psycopg.Error as exc:
            return f"no SQL answer: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}"
        if not level or level[0] != "logical":
            return f"wal_level is {level[0] if level else '?'}, need logical"
        return None

    def _bootstrap_postgres(self) -> None:
        """The ddbridge role (LOGIN REPLICATION) and database, and the TLS-only role, idempotently."""
        with psycopg.connect(self.pg_conninfo(), autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (PG_TLS_ROLE,)).fetchone():
                conn.execute(
                    psycopg.sql.SQL("CREATE ROLE {} LOGIN REPLICATION CREATEDB PASSWORD {}").format(
                        psycopg.sql.Identifier(PG_TLS_ROLE), psycopg.sql.Literal(PG_TLS_PASSWORD)
                    )
                )
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (self.db_user,)).fetchone()
            role = psycopg.sql.Identifier(self.db_user)
            if not exists:
                conn.execute(
                    psycopg.sql.SQL("CREATE ROLE {} LOGIN REPLICATION PASSWORD {}").format(
                        role, psycopg.sql.Literal(self.db_password)
                    )
                )
            for name in (self.db_name, REGISTRY_DB):
                if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                    conn.execute(
                        psycopg.sql.SQL("CREATE DATABASE {} OWNER {}").format(psycopg.sql.Identifier(name), role)
                    )

    # Kafka -----------------------------------------------------------------------------------

    def _java(self, component: str, heap_mb: int, main: str, *args: str, properties: tuple[str, ...] = ()) -> list[str]:
        java = install.require_tool("java", "install OpenJDK 17+")
        return [
            java,
            f"-Xms{min(256, heap_mb)}m",
            f"-Xmx{heap_mb}m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self.logs / component}",
            f"-Dlog4j2.configurationFile={OPS_DIR / 'log4j2.properties'}",
            f"-Dddbridge.stack={self.root}",
            *properties,
            "-cp",
            f"{self.jvm / 'lib'}/*",
            main,
            *args,
        ]

    def _kafka_properties(self) -> Path:
        p = self.ports
        kdir = self.root / "kafka"
        kdir.mkdir(parents=True, exist_ok=True)
        props = kdir / "server.properties"
        props.write_text(
            "process.roles=broker,controller\nnode.id=1\n"
            f"controller.quorum.voters=1@127.0.0.1:{p.kafka_controller}\n"
            f"listeners=PLAINTEXT://127.0.0.1:{p.kafka},CONTROLLER://127.0.0.1:{p.kafka_controller},"
            f"SASL_SSL://127.0.0.1:{p.kafka_sasl_ssl},SSL://127.0.0.1:{p.kafka_ssl},"
            f"PROXIED://127.0.0.1:{p.kafka_proxied}\n"
            # PROXIED: plaintext behind Toxiproxy, advertised at the proxy so every connection goes through it
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{p.kafka},SASL_SSL://127.0.0.1:{p.kafka_sasl_ssl},"
            f"SSL://127.0.0.1:{p.kafka_ssl},PROXIED://127.0.0.1:{p.toxiproxy_kafka}\n"
            "controller.listener.names=CONTROLLER\ninter.broker.listener.name=PLAINTEXT\n"
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL,"
            "PROXIED:PLAINTEXT\n" + self._kafka_security() + f"log.dirs={kdir / 'data'}\n"
            "num.partitions=4\nauto.create.topics.enable=true\n"
            "offsets.topic.replication.factor=1\noffsets.topic.num.partitions=10\n"
            "transaction.state.log.replication.factor=1\ntransaction.state.log.min.isr=1\n"
            "share.coordinator.state.topic.replication.factor=1\nshare.coordinator.state.topic.min.isr=1\n"
            "group.initial.rebalance.delay.ms=0\nlog.retention.hours=168\n"
            "num.network.threads=2\nnum.io.threads=4\n"
        )
        return props

    def _kafka_security(self) -> str:
        """The TLS listeners' PEM keystore and truststore, SCRAM on SASL_SSL, client certificates on SSL
        (principal: the certificate's CN), and ACL authorisation for everyone but PLAINTEXT's ANONYMOUS."""
        tls = ensure_tls_files(self.root / "tls", TLS_CLIENTS)
        scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        return (
            f"ssl.keystore.type=PEM\nssl.keystore.location={tls.server_keystore}\n"
            f"ssl.truststore.type=PEM\nssl.truststore.location={tls.ca}\n"
            "sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256\n"
            f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={scram}\n"
            f"listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config={scram}\n"
            "listener.name.ssl.ssl.client.auth=required\n"
            "ssl.principal.mapping.rules=RULE:^CN=([^,]+)$/$1/,DEFAULT\n"
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\n"
            "super.users=User:ANONYMOUS\nallow.everyone.if.no.acl.found=false\n"
        )

    def _bootstrap_kafka(self) -> None:
        """The SCRAM users of the SASL_SSL listener, idempotently (an upsert per mechanism: Kafka refuses
        two changes of one user in one request)."""
        admin = AdminClient({"bootstrap.servers": self.kafka_bootstrap, "log_level": 0})
        for mechanism in (ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512):
            upserts: list[UserScramCredentialAlteration] = [
                UserScramCredentialUpsertion(user, ScramCredentialInfo(mechanism, 4096), password.encode())
                for user, password in SCRAM_USERS.items()
            ]
            try:
                for future in admin.alter_user_scram_credentials(upserts, request_timeout=30).values():
                    future.result()
            except KafkaException as exc:
                raise StackError(f"creating the SCRAM users of Kafka's SASL_SSL listener failed: {exc}") from exc

    def _start_kafka(self) -> None:
        install.ensure_jvm_jars(self.jvm, self.settings.install_timeout_s)
        props = self._kafka_properties()
        if not (self.root / "kafka" / "data" / "meta.properties").exists():
            argv = self._java(
                "kafka", 256, "kafka.tools.StorageTool", "format", "-t", kafka_cluster_id(), "-c", str(props)
            )
            out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
            if out.returncode != 0:
                raise StackError(f"formatting Kafka storage failed: {(out.stdout + out.stderr).strip()}")
        comp = self.components["kafka"]
        procs.spawn(self._java("kafka", self.settings.kafka_heap_mb, "kafka.Kafka", str(props)), comp.pidfile, comp.log)

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.ports.kafka}"

    def _health_kafka(self) -> str | None:
        admin = AdminClient({"bootstrap.servers": self.kafka_bootstrap, "socket.timeout.ms": 3000, "log_level": 0})
        try:
            meta = admin.list_topics(timeout=3)
        except Exception as exc:  # confluent-kafka raises KafkaException with varied payloads
            return f"no metadata: {exc}"
        return None if meta.brokers else "no broker in metadata"

    # Kafka Connect ---------------------------------------------------------------------------

    @property
    def connect_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.connect}"

    def _start_connect(self) -> None:
        install.ensure_jvm_jars(self.jvm, self.settings.install_timeout_s)
        cdir = self.root / "connect"
        cdir.mkdir(parents=True, exist_ok=True)
        props = cdir / "worker.properties"
        props.write_text(
            f"bootstrap.servers={self.kafka_bootstrap}\ngroup.id=ddbridge-connect\n"
            "config.storage.topic=ddbridge-connect-configs\noffset.storage.topic=ddbridge-connect-offsets\n"
            "status.storage.topic=ddbridge-connect-status\nconfig.storage.replication.factor=1\n"
            "offset.storage.replication.factor=1\nstatus.storage.replication.factor=1\n"
            "offset.storage.partitions=5\nstatus.storage.partitions=1\n"
            "key.converter=org.apache.kafka.connect.json.JsonConverter\n"
            "value.converter=org.apache.kafka.connect.json.JsonConverter\n"
            "key.converter.schemas.enable=true\nvalue.converter.schemas.enable=true\n"
            "offset.flush.interval.ms=5000\n"
            f"listeners=HTTP://127.0.0.1:{self.ports.connect},HTTPS://127.0.0.1:{self.ports.connect_https}\n"
            "rest.advertised.listener=http\nrest.advertised.host.name=127.0.0.1\n"
            f"rest.advertised.port={self.ports.connect}\n"
            f"plugin.path={self.jvm / 'plugins'}\nplugin.discovery=only_scan\n"
            "scheduled.rebalance.max.delay.ms=5000\n" + self._connect_security(cdir)
        )
        comp = self.components["connect"]
        procs.spawn(
            self._java(
                "connect",
                self.settings.connect_heap_mb,
                "org.apache.kafka.connect.cli.ConnectDistributed",
                str(props),
                properties=(f"-Djava.security.auth.login.config={cdir / 'rest-jaas.conf'}",),
            ),
            comp.pidfile,
            comp.log,
        )

    def _connect_security(self, cdir: Path) -> str:
        """Basic auth on every REST listener (Kafka's BasicAuthSecurityRestExtension with a JAAS property
        file of ``CONNECT_USERS``) and the HTTPS listener's PKCS#12 keystore; the worker properties."""
        tls = ensure_tls_files(self.root / "tls", TLS_CLIENTS)
        users = cdir / "rest-users.properties"
        users.write_text("".join(f"{user}: {password}\n" for user, password in CONNECT_USERS.items()))
        users.chmod(0o600)
        module = "org.apache.kafka.connect.rest.basic.auth.extension.PropertyFileLoginModule"
        (cdir / "rest-jaas.conf").write_text(f'KafkaConnect {{\n  {module} required\n  file="{users}";\n}};\n')
        return (
            "rest.extension.classes=org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension\n"
            f"listeners.https.ssl.keystore.type=PKCS12\nlisteners.https.ssl.keystore.location={tls.server_pkcs12}\n"
            f"listeners.https.ssl.keystore.password={KEYSTORE_PASSWORD}\n"
            f"listeners.https.ssl.key.password={KEYSTORE_PASSWORD}\n"
        )

    def _health_connect(self) -> str | None:
        try:
            resp = requests.get(
                f"{self.connect_url}/connector-plugins", timeout=3, auth=next(iter(CONNECT_USERS.items()))
            )
        except requests.RequestException as exc:
            return f"REST not answering: {type(exc).__name__}"
        if resp.status_code != 200:
            return f"REST answered {resp.status_code}"
        if not any(p.get("class") == DEBEZIUM_PLUGIN_CLASS for p in resp.json()):
            return f"the Debezium plugin is not loaded (plugin.path={self.jvm / 'plugins'})"
        return None

    # Schema registry ---------------------------------------------------------------------------

    @property
    def registry_url(self) -> str:
        """The registry's Confluent-compatible API (what ddbridge's registry client talks to)."""
        return f"http://127.0.0.1:{self.ports.registry}/apis/ccompat/v7"

    def _start_registry(self) -> None:
        install.ensure_jvm_jars(self.jvm, self.settings.install_timeout_s)
        jar = install.registry_jar(self.jvm)
        assert jar is not None  # ensure_jvm_jars checked it
        java = install.require_tool("java", "install OpenJDK 17+")
        heap = self.settings.registry_heap_mb
        comp = self.components["registry"]
        argv = [
            java,
            f"-Xms{min(128, heap)}m",
            f"-Xmx{heap}m",
            "-XX:+ExitOnOutOfMemoryError",
            f"-Dddbridge.stack={self.root}",
            "-Dquarkus.http.host=127.0.0.1",
            f"-Dquarkus.http.port={self.ports.registry}",
            "-Dquarkus.management.enabled=false",
            # Schemas and their ids survive a restart: stored in the stack's PostgreSQL, not in memory.
            "-Dapicurio.storage.kind=sql",
            "-Dapicurio.storage.sql.kind=postgresql",
            f"-Dapicurio.datasource.url=jdbc:postgresql://127.0.0.1:{self.ports.postgres}/{REGISTRY_DB}",
            f"-Dapicurio.datasource.username={self.db_user}",
            f"-Dapicurio.datasource.password={self.db_password}",
            "-jar",
            str(jar),
        ]
        procs.spawn(argv, comp.pidfile, comp.log)

    def _health_registry(self) -> str | None:
        try:
            resp = requests.get(f"{self.registry_url}/subjects", timeout=3)
        except requests.RequestException as exc:
            return f"REST not answering: {type(exc).__name__}"
        return None if resp.status_code == 200 else f"REST answered {resp.status_code}"

    # DynamoDB API servers --------------------------------------------------------------------

    def _start_dynalite(self) -> None:
        cli = install.ensure_dynalite(self.root / "dynalite", self.settings.install_timeout_s)
        node = install.require_tool("node", "install Node.js 20+")
        data = self.root / "dynalite" / "data"
        data.mkdir(parents=True, exist_ok=True)
        comp = self.components["dynalite"]
        procs.spawn(
            [
                node,
                "-r",
                str(install.DYNALITE_DIR / "guard.js"),
                str(cli),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.ports.dynalite),
                "--path",
                str(data),
                "--createTableMs",
                "0",
                "--deleteTableMs",
                "0",
                "--updateTableMs",
                "0",
            ],
            comp.pidfile,
            comp.log,
        )

    def _start_moto(self) -> None:
        comp = self.components["moto"]
        procs.spawn(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.ports.moto)], comp.pidfile, comp.log
        )

    @property
    def ddbsim_url(self) -> str:
        """The service-like DynamoDB layer (a DynamoDB endpoint; its admin API under ``/_ddbsim``)."""
        return f"http://127.0.0.1:{self.ports.ddbsim}"

    def _start_ddbsim(self) -> None:
        comp = self.components["ddbsim"]
        argv = [sys.executable, "-m", "ops.ddbsim.server", "--port", str(self.ports.ddbsim)]
        procs.spawn([*argv, "--upstream", f"http://127.0.0.1:{self.ports.dynalite}"], comp.pidfile, comp.log)

    # TCP fault proxy ---------------------------------------------------------------------------

    @property
    def toxiproxy_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.toxiproxy}"

    def proxies(self) -> dict[str, tuple[int, int]]:
        """Toxiproxy's proxies: name -> (port it listens on, port of the component behind it)."""
        p = self.ports
        return {
            "postgres": (p.toxiproxy_postgres, p.postgres),
            "kafka": (p.toxiproxy_kafka, p.kafka_proxied),
            "connect": (p.toxiproxy_connect, p.connect),
            "dynamodb": (p.toxiproxy_dynamodb, p.ddbsim),
        }

    def _start_toxiproxy(self) -> None:
        binary = install.ensure_toxiproxy(self.root / "toxiproxy", self.settings.install_timeout_s)
        config = self.root / "toxiproxy" / "proxies.json"
        config.write_text(
            json.dumps(
                [
                    {
                        "name": name,
                        "listen": f"127.0.0.1:{listen}",
                        "upstream": f"127.0.0.1:{upstream}",
                        "enabled": True,
                    }
                    for name, (listen, upstream) in self.proxies().items()
                ],
                indent=2,
            )
        )
        comp = self.components["toxiproxy"]
        argv = [str(binary), "-host", "127.0.0.1", "-port", str(self.ports.toxiproxy), "-config", str(config)]
        procs.spawn(argv, comp.pidfile, comp.log)

    def _health_toxiproxy(self) -> str | None:
        try:
            resp = requests.get(f"{self.toxiproxy_url}/proxies", timeout=3)
        except requests.RequestException as exc:
            return f"API not answering: {type(exc).__name__}"
        if resp.status_code != 200:
            return f"API answered {resp.status_code}"
        missing = sorted(set(self.proxies()) - set(resp.json()))
        return f"proxies {missing} are missing" if missing else None

    def _dynamo_health(self, port: int) -> Callable[[], str | None]:
        def check() -> str | None:
            client = boto3.client(
                "dynamodb",
                endpoint_url=f"http://127.0.0.1:{port}",
                region_name="us-east-1",
                aws_access_key_id="local",
                aws_secret_access_key="local",
                config=BotoConfig(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}),
            )
            # DescribeTable of a table that does not exist: an answer in constant time (dynalite's
            # ListTables reads every table's metadata and slows down as tables accumulate).
            try:
                client.describe_table(TableName="ddbridge-health-probe")
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                    return None
                return f"DescribeTable failed: {exc.response.get('Error', {}).get('Code')}"
            except Exception as exc:  # botocore raises many unrelated types for a dead endpoint
                return f"DynamoDB API not answering: {type(exc).__name__}"
            return None

        return check

    # -- lifecycle -----------------------------------------------------------------------------

    def _select(self, names: list[str] | None) -> list[Component]:
        if not names:
            return list(self.components.values())
        unknown = [n for n in names if n not in self.components]
        if unknown:
            raise StackError(f"unknown component(s) {unknown}; known: {list(self.components)}")
        return [self.components[n] for n in names]

    def _failure(self, comp: Component, why: str) -> StackError:
        log_tail = procs.tail(comp.log)
        return StackError(
            f"{comp.name} ({comp.hint}, port {comp.port}) is not healthy: {why}\n"
            f"--- last lines of {comp.log} ---\n{log_tail}\n---\n"
            f"what to do: read {comp.log}; `ddbridge stack down` then `ddbridge stack up` restarts it; "
            f"if port {comp.port} is taken, set stack.ports.{comp.name} (env DDBRIDGE_STACK__PORTS__"
            f"{comp.name.upper()})."
        )

    def _launch(self, comp: Component) -> bool:
        """Start a component unless it is already running; True if it was started now."""
        if comp.pid() is not None:
            return False
        if procs.port_open(comp.port):
            raise StackError(
                f"port {comp.port} for {comp.name} is already in use by another process (not started by this stack, "
                f"or by a stack in another directory); stop it or set stack.ports.{comp.name} to a free port"
            )
        comp.start()
        return True

    def _wait_healthy(self, comp: Component, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        why: str | None = "not checked"
        while time.monotonic() < deadline:
            if comp.pid() is None:
                raise self._failure(comp, "the process exited during start-up")
            why = comp.health()
            if why is None:
                return
            time.sleep(0.5)
        raise self._failure(comp, f"no healthy answer within {timeout_s:.0f} s ({why})")

    def up(self, names: list[str] | None = None, progress: Callable[[str], None] = lambda _: None) -> None:
        """Install what is missing, start what is not running, and wait until all answer."""
        selected = self._select(names)
        wanted = {c.name for c in selected}
        for comp in selected:  # dependencies first
            for dep in comp.after:
                if dep not in wanted:
                    selected.insert(0, self.components[dep])
                    wanted.add(dep)
        self.root.mkdir(parents=True, exist_ok=True)
        timeout = self.settings.start_timeout_s
        started: list[Component] = []
        for comp in [c for c in selected if not c.after]:
            progress(f"{comp.name}: {'starting' if self._launch(comp) else 'already running'}")
            started.append(comp)
        for comp in started:
            self._wait_healthy(comp, timeout)
            progress(f"{comp.name}: healthy on 127.0.0.1:{comp.port}")
            if comp.name == "postgres":
                self._bootstrap_postgres()
            if comp.name == "kafka":
                self._bootstrap_kafka()
        dependents = [c for c in selected if c.after]
        for comp in dependents:  # started together, then waited for
            progress(f"{comp.name}: {'starting' if self._launch(comp) else 'already running'}")
        for comp in dependents:
            self._wait_healthy(comp, timeout)
            progress(f"{comp.name}: healthy on 127.0.0.1:{comp.port}")

    def down(self, names: list[str] | None = None, progress: Callable[[str], None] = lambda _: None) -> None:
        """Stop the components this stack started (dependents first), gracefully then forcibly."""
        for comp in reversed(self._select(names)):
            outcome = procs.stop(comp.pidfile, comp.marker, graceful=comp.graceful, timeout_s=comp.stop_timeout_s)
            progress(f"{comp.name}: {outcome}")

    def status(self) -> list[ComponentStatus]:
        """Component, port, PID and health of every component."""
        rows = []
        for comp in self.components.values():
            pid = comp.pid()
            why = comp.health() if pid is not None else "not running"
            rows.append(ComponentStatus(comp.name, comp.port, pid, why is None, why or "healthy", str(comp.log)))
        return rows
