"""The Kafka clients' security settings: what librdkafka is given for each protocol and mechanism, the
keys a user may not set, secrets read from files, and secrets never shown. Expected configurations are
written out as literals (librdkafka's documented property names)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from confluent_kafka import KafkaError
from pydantic import SecretStr

from bridge.config import OWNED_LIBRDKAFKA_KEYS, KafkaSettings, load_settings
from bridge.errors import ConfigError, KafkaAccessError
from bridge.kafka_config import AccessErrors, access_problem, client_config


def _settings(tmp_path: Path, kafka: str) -> KafkaSettings:
    path = tmp_path / "ddbridge.toml"
    path.write_text("[kafka]\n" + kafka)
    return load_settings(path).kafka


def test_plaintext_is_the_brokers_and_the_client_id_and_the_clients_own_keys_win() -> None:
    kafka = KafkaSettings(bootstrap_servers="b1:9092,b2:9092", librdkafka={"socket.keepalive.enable": "true"})
    assert client_config(kafka, "ddbridge-stream", {"group.id": "g", "socket.keepalive.enable": "false"}) == {
        "bootstrap.servers": "b1:9092,b2:9092",
        "client.id": "ddbridge-stream",
        "security.protocol": "PLAINTEXT",
        "socket.keepalive.enable": "false",
        "group.id": "g",
    }


def test_sasl_ssl_with_scram_and_a_private_ca(tmp_path: Path) -> None:
    kafka = _settings(
        tmp_path,
        'bootstrap_servers = "b-1.example.com:9096"\nsecurity_protocol = "SASL_SSL"\n'
        'sasl_mechanism = "SCRAM-SHA-512"\nsasl_username = "bridge"\nsasl_password = "s3cret-pw"\n'
        'ssl_ca_location = "/etc/ddbridge/ca.pem"\n',
    )
    assert client_config(kafka, "ddbridge-dlq") == {
        "bootstrap.servers": "b-1.example.com:9096",
        "client.id": "ddbridge-dlq",
        "security.protocol": "SASL_SSL",
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.ca.location": "/etc/ddbridge/ca.pem",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "bridge",
        "sasl.password": "s3cret-pw",
    }


def test_mtls_with_an_encrypted_key_and_without_hostname_verification(tmp_path: Path) -> None:
    kafka = _settings(
        tmp_path,
        'bootstrap_servers = "k:9093"\nsecurity_protocol = "SSL"\nssl_ca_location = "ca.pem"\n'
        'ssl_certificate_location = "client.pem"\nssl_key_location = "client.key"\nssl_key_password = "kp"\n'
        "ssl_endpoint_identification = false\n",
    )
    assert client_config(kafka, "x") == {
        "bootstrap.servers": "k:9093",
        "client.id": "x",
        "security.protocol": "SSL",
        "ssl.endpoint.identification.algorithm": "none",
        "ssl.ca.location": "ca.pem",
        "ssl.certificate.location": "client.pem",
        "ssl.key.location": "client.key",
        "ssl.key.password": "kp",
    }


def test_msk_iam_signs_a_token_for_the_clusters_region_with_the_aws_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEY123456")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example-secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    kafka = _settings(
        tmp_path,
        'bootstrap_servers = "b-1.msk.example:9098"\nsecurity_protocol = "SASL_SSL"\n'
        'sasl_mechanism = "OAUTHBEARER"\naws_region = "eu-west-1"\n',
    )
    config = client_config(kafka, "ddbridge-stream")
    assert config["sasl.mechanism"] == "OAUTHBEARER" and "sasl.username" not in config
    token, expiry_s = config["oauth_cb"]("")
    url = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert parts.netloc == "kafka.eu-west-1.amazonaws.com"
    assert query["Action"] == ["kafka-cluster:Connect"]
    assert query["X-Amz-Credential"][0].startswith("AKIAEXAMPLEKEY123456/")
    assert "/eu-west-1/kafka-cluster/aws4_request" in query["X-Amz-Credential"][0]
    assert 0 < expiry_s - time.time() <= 900


def test_msk_iam_without_a_region_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    kafka = _settings(tmp_path, 'security_protocol = "SASL_SSL"\nsasl_mechanism = "OAUTHBEARER"\n')
    with pytest.raises(ConfigError, match=r"kafka\.aws_region"):
        client_config(kafka, "x")["oauth_cb"]("")


def test_oauthbearer_with_librdkafkas_oidc_method_gets_no_msk_signer(tmp_path: Path) -> None:
    kafka = _settings(
        tmp_path,
        'security_protocol = "SASL_SSL"\nsasl_mechanism = "OAUTHBEARER"\n'
        '[kafka.librdkafka]\n"sasl.oauthbearer.method" = "oidc"\n"sasl.oauthbearer.client.id" = "c"\n',
    )
    config = client_config(kafka, "x")
    assert "oauth_cb" not in config
    assert config["sasl.oauthbearer.method"] == "oidc" and config["sasl.oauthbearer.client.id"] == "c"


@pytest.mark.parametrize("key", sorted(OWNED_LIBRDKAFKA_KEYS))
def test_a_key_ddbridge_owns_cannot_be_set_raw(tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"kafka: .*librdkafka keys \['{key}'\] are set by ddbridge"):
        _settings(tmp_path, f'[kafka.librdkafka]\n"{key}" = "x"\n')


def test_the_commit_protocols_keys_are_among_those_owned() -> None:
    assert {
        "enable.auto.commit",
        "enable.auto.offset.store",
        "auto.offset.reset",
        "group.id",
        "group.instance.id",
        "partition.assignment.strategy",
        "enable.idempotence",
        "acks",
        "isolation.level",
    } <= OWNED_LIBRDKAFKA_KEYS


@pytest.mark.parametrize(
    ("kafka", "message"),
    [
        ('security_protocol = "SASL_SSL"\n', "needs sasl_mechanism"),
        ('sasl_mechanism = "PLAIN"\n', "uses no SASL"),
        ('security_protocol = "SASL_PLAINTEXT"\nsasl_mechanism = "SCRAM-SHA-256"\nsasl_username = "u"\n', "needs"),
        ('security_protocol = "SSL"\nssl_certificate_location = "c.pem"\n', "needs both"),
        ('ssl_ca_location = "ca.pem"\n', "uses no TLS"),
        ('security_protocol = "SASL_SSL "\nsasl_mechanism = "PLAIN"\n', "security_protocol"),
        ('security_protocol = "SASL_SSL"\nsasl_mechanism = "GSSAPI"\n', "sasl_mechanism"),
    ],
)
def test_inconsistent_security_settings_are_config_errors(tmp_path: Path, kafka: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _settings(tmp_path, kafka)


def test_a_secret_can_come_from_a_file_or_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "sasl-password"
    secret.write_text("from-a-file\n")  # as `kubectl create secret` and Docker mount it: a trailing newline
    common = 'security_protocol = "SASL_SSL"\nsasl_mechanism = "PLAIN"\nsasl_username = "u"\n'
    kafka = _settings(tmp_path, common + f'sasl_password_file = "{secret}"\n')
    assert client_config(kafka, "x")["sasl.password"] == "from-a-file"
    monkeypatch.setenv("DDBRIDGE_KAFKA__SASL_PASSWORD_FILE", str(secret))
    assert _settings(tmp_path, common).sasl_password is not None
    monkeypatch.delenv("DDBRIDGE_KAFKA__SASL_PASSWORD_FILE")
    monkeypatch.setenv("DDBRIDGE_KAFKA__SASL_PASSWORD", "from-the-env")
    assert client_config(_settings(tmp_path, common), "x")["sasl.password"] == "from-the-env"


def test_a_secret_given_twice_or_an_unreadable_secret_file_is_a_config_error(tmp_path: Path) -> None:
    common = 'security_protocol = "SASL_SSL"\nsasl_mechanism = "PLAIN"\nsasl_username = "u"\n'
    with pytest.raises(ConfigError, match="sasl_password and sasl_password_file are both set"):
        _settings(tmp_path, common + 'sasl_password = "a"\nsasl_password_file = "/etc/hostname"\n')
    with pytest.raises(ConfigError, match=r"sasl_password_file: cannot read .*missing"):
        _settings(tmp_path, common + f'sasl_password_file = "{tmp_path / "missing"}"\n')


def test_other_secrets_have_files_too(tmp_path: Path) -> None:
    (tmp_path / "dsn").write_text("postgresql://u:pw@db.internal:5432/app\n")
    path = tmp_path / "ddbridge.toml"
    path.write_text(f'[source]\ndsn_file = "{tmp_path / "dsn"}"\n')
    assert load_settings(path).source.dsn.get_secret_value() == "postgresql://u:pw@db.internal:5432/app"


def test_kafka_secrets_are_masked_when_the_configuration_is_shown(tmp_path: Path) -> None:
    kafka = _settings(
        tmp_path,
        'security_protocol = "SASL_SSL"\nsasl_mechanism = "PLAIN"\nsasl_username = "u"\nsasl_password = "pw-1"\n'
        'ssl_key_password = "pw-2"\n[kafka.librdkafka]\n"sasl.oauthbearer.client.secret" = "pw-3"\n',
    )
    shown = json.dumps(json.loads(kafka.model_dump_json())) + repr(kafka) + str(kafka)
    assert not {"pw-1", "pw-2", "pw-3"} & {w.strip('"') for w in shown.replace(",", " ").split()}
    assert all(secret not in shown for secret in ("pw-1", "pw-2", "pw-3"))


SCRAM = KafkaSettings(
    bootstrap_servers="b:9096",
    security_protocol="SASL_SSL",
    sasl_mechanism="SCRAM-SHA-512",
    sasl_username="bridge",
    sasl_password=SecretStr("pw"),
)


# Error texts as librdkafka 2.x reports them (seen against the local stack's secured listeners).
@pytest.mark.parametrize(
    ("code", "text", "expected"),
    [
        (
            KafkaError._AUTHENTICATION,
            "sasl_ssl://b:9096/bootstrap: SASL authentication error: Authentication failed during authentication due "
            "to invalid credentials with SASL mechanism SCRAM-SHA-512 (after 339ms in state AUTH_REQ)",
            "Kafka at b:9096 refused the SASL SCRAM-SHA-512 login of bridge: SASL authentication error: Authentication "
            "failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512; check "
            "kafka.sasl_username, kafka.sasl_password (or sasl_password_file) and kafka.sasl_mechanism",
        ),
        (
            KafkaError._SSL,
            "sasl_ssl://b:9096/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify "
            "failed: broker certificate could not be verified (after 5ms in state SSL_HANDSHAKE)",
            "TLS with Kafka at b:9096 failed: SSL handshake failed: error:0A000086:SSL routines::certificate verify "
            "failed: broker certificate could not be verified; check kafka.ssl_ca_location (the CA that signed the "
            "brokers' certificates) and, for mTLS, kafka.ssl_certificate_location/ssl_key_location (a certificate the "
            "brokers trust)",
        ),
        (
            KafkaError._TRANSPORT,
            "ssl://b:9096/bootstrap: Receive failed: error:0A000412:SSL routines::ssl/tls alert bad certificate: SSL "
            "alert number 42 (after 1ms in state APIVERSION_QUERY)",
            "TLS with Kafka at b:9096 failed: Receive failed: error:0A000412:SSL routines::ssl/tls alert bad "
            "certificate: SSL alert number 42; check kafka.ssl_ca_location",
        ),
        (
            KafkaError.GROUP_AUTHORIZATION_FAILED,
            "FindCoordinator response error: Group authorization failed.",
            "Kafka denied User:bridge an operation on the consumer group: FindCoordinator response error: Group "
            "authorization failed.; grant it the ACLs listed in the README (Production notes, Kafka ACLs), or check "
            "kafka.consumer_group and kafka.topic_prefix",
        ),
        (KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down", None),  # retried: the brokers may come back
        (KafkaError._TRANSPORT, "b:9096/bootstrap: Connection refused (after 0ms in state CONNECT)", None),
    ],
)
def test_errors_retrying_cannot_fix_are_explained_with_the_settings_to_check(
    code: int, text: str, expected: str | None
) -> None:
    problem = access_problem(KafkaError(code, text), SCRAM)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and problem.startswith(expected)


def test_the_first_access_problem_of_a_client_is_kept_and_raised(caplog: pytest.LogCaptureFixture) -> None:
    access = AccessErrors(SCRAM)
    access.check()  # nothing yet
    access.record(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    access.check()
    assert "Kafka: 1/1 brokers are down" in caplog.text  # retried errors are still logged
    access.record(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "Topic authorization failed."))
    access.record(KafkaError(KafkaError._AUTHENTICATION, "SASL authentication error"))
    with pytest.raises(KafkaAccessError, match="denied User:bridge an operation on a topic"):
        access.check()
    assert client_config(SCRAM, "x", access=access)["error_cb"] == access.record
