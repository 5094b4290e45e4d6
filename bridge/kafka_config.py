"""The librdkafka configuration of every Kafka client ddbridge creates (the bridge's consumer, the
dead-letter producer, admin clients): the brokers, the security settings of ``[kafka]``, the user's
raw ``kafka.librdkafka`` keys, then the keys the calling client owns. One builder, so a setting
reaches every client."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import boto3
from aws_msk_iam_sasl_signer import MSKAuthTokenProvider
from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient

from bridge.config import KafkaSettings
from bridge.errors import ConfigError, KafkaAccessError

log = logging.getLogger("ddbridge.kafka")


def client_config(
    kafka: KafkaSettings,
    client_id: str,
    owned: Mapping[str, Any] | None = None,
    access: AccessErrors | None = None,
) -> dict[str, Any]:
    """librdkafka settings for one client: ``owned`` are the keys the client itself needs (group,
    commits, delivery guarantee, timeouts) and win over everything else; ``access`` collects the
    client's authentication, TLS and authorisation errors."""
    config: dict[str, Any] = {
        "bootstrap.servers": kafka.bootstrap_servers,
        "client.id": client_id,
        "security.protocol": kafka.security_protocol,
    }
    if kafka.security_protocol.endswith("SSL"):
        config["ssl.endpoint.identification.algorithm"] = "https" if kafka.ssl_endpoint_identification else "none"
        for key, path in (
            ("ssl.ca.location", kafka.ssl_ca_location),
            ("ssl.certificate.location", kafka.ssl_certificate_location),
            ("ssl.key.location", kafka.ssl_key_location),
        ):
            if path is not None:
                config[key] = str(path)
        if kafka.ssl_key_password is not None:
            config["ssl.key.password"] = kafka.ssl_key_password.get_secret_value()
    raw = {key: value.get_secret_value() for key, value in kafka.librdkafka.items()}
    if kafka.sasl_mechanism is not None:
        config["sasl.mechanism"] = kafka.sasl_mechanism
        if kafka.sasl_mechanism == "OAUTHBEARER":
            if raw.get("sasl.oauthbearer.method", "default") != "oidc":
                config["oauth_cb"] = msk_iam_token_callback(kafka.aws_region, kafka.aws_role_arn)
        else:
            config["sasl.username"] = kafka.sasl_username
            config["sasl.password"] = kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
    if access is not None:
        config["error_cb"] = access.record
    return config | raw | dict(owned or {})


def admin_client(
    kafka: KafkaSettings, client_id: str = "ddbridge-admin", access: AccessErrors | None = None
) -> AdminClient:
    """An admin client with the configured brokers and security."""
    return AdminClient(client_config(kafka, client_id, access=access))


_AUTHENTICATION = {
    KafkaError._AUTHENTICATION,
    KafkaError.SASL_AUTHENTICATION_FAILED,
    KafkaError.UNSUPPORTED_SASL_MECHANISM,
    KafkaError.ILLEGAL_SASL_STATE,
}
_DENIED = {
    KafkaError.TOPIC_AUTHORIZATION_FAILED: "on a topic",
    KafkaError.GROUP_AUTHORIZATION_FAILED: "on the consumer group",
    KafkaError.CLUSTER_AUTHORIZATION_FAILED: "on the cluster",
    KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED: "on a transactional id",
}


def access_problem(err: KafkaError, kafka: KafkaSettings) -> str | None:
    """A one-line explanation, naming the settings to check, of an error retrying cannot fix: Kafka
    refused the credentials, the TLS handshake failed, or an ACL denied an operation. None otherwise."""
    detail = _detail(err.str())
    code = err.code()
    if code in _AUTHENTICATION:
        who = f"{kafka.sasl_mechanism} login of {kafka.sasl_username or 'the AWS identity'}"
        return (
            f"Kafka at {kafka.bootstrap_servers} refused the SASL {who}: {detail}; check kafka.sasl_username, "
            "kafka.sasl_password (or sasl_password_file) and kafka.sasl_mechanism"
        )
    tls_refused = code == KafkaError._TRANSPORT and ("SSL" in detail or "certificate" in detail)
    if code == KafkaError._SSL or tls_refused:
        return (
            f"TLS with Kafka at {kafka.bootstrap_servers} failed: {detail}; check kafka.ssl_ca_location (the CA "
            "that signed the brokers' certificates) and, for mTLS, kafka.ssl_certificate_location/ssl_key_location "
            "(a certificate the brokers trust)"
        )
    if code in _DENIED:
        return (
            f"Kafka denied {principal(kafka)} an operation {_DENIED[code]}: {detail}; grant it the ACLs listed in "
            "the README (Production notes, Kafka ACLs), or check kafka.consumer_group and kafka.topic_prefix"
        )
    return None


def principal(kafka: KafkaSettings) -> str:
    """Who the brokers see, as far as the settings tell."""
    if kafka.sasl_mechanism == "OAUTHBEARER":
        return "the AWS IAM identity of the credential chain"
    if kafka.sasl_username:
        return f"User:{kafka.sasl_username}"
    if kafka.ssl_certificate_location:
        return f"the principal of the certificate {kafka.ssl_certificate_location}"
    return "ddbridge's principal (User:ANONYMOUS without authentication)"


def _detail(text: str) -> str:
    """librdkafka's message without the broker prefix and the state-machine suffix."""
    text = text.split("bootstrap: ", 1)[-1]
    return text.split(" (after ", 1)[0].strip()


class AccessErrors:
    """Collects the first error of a client that retrying cannot fix (librdkafka's ``error_cb``)."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self.kafka = kafka
        self.problem: str | None = None

    def record(self, err: KafkaError) -> None:
        """librdkafka logs nothing itself once an ``error_cb`` is set: other errors are logged here."""
        problem = access_problem(err, self.kafka)
        if problem is None:
            log.warning("Kafka: %s", err.str())
        elif self.problem is None:
            self.problem = problem

    def check(self) -> None:
        """Raise the recorded problem, if any."""
        if self.problem is not None:
            raise KafkaAccessError(self.problem)


def msk_iam_token_callback(region: str | None, role_arn: str | None) -> Callable[[str], tuple[str, float]]:
    """librdkafka's ``oauth_cb`` for Amazon MSK IAM: a token signed with the AWS credential chain (or an
    assumed role), valid for 15 minutes; librdkafka asks again before it expires."""

    def token(_config: str) -> tuple[str, float]:
        cluster_region = region or _chain_region()
        if role_arn:
            value, expiry_ms = MSKAuthTokenProvider.generate_auth_token_from_role_arn(cluster_region, role_arn)
        else:
            value, expiry_ms = MSKAuthTokenProvider.generate_auth_token(cluster_region)
        return value, expiry_ms / 1000

    return token


def _chain_region() -> str:
    region: str | None = boto3.session.Session().region_name
    if not region:
        raise ConfigError(
            "kafka.sasl_mechanism=OAUTHBEARER (Amazon MSK IAM) needs the cluster's region: set kafka.aws_region "
            "or AWS_REGION"
        )
    return region
