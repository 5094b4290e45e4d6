"""The librdkafka configuration of every Kafka client ddbridge creates (the bridge's consumer, the
dead-letter producer, admin clients): the brokers, the security settings of ``[kafka]``, the user's
raw ``kafka.librdkafka`` keys, then the keys the calling client owns. One builder, so a setting
reaches every client."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import boto3
from aws_msk_iam_sasl_signer import MSKAuthTokenProvider
from confluent_kafka.admin import AdminClient

from bridge.config import KafkaSettings
from bridge.errors import ConfigError


def client_config(kafka: KafkaSettings, client_id: str, owned: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """librdkafka settings for one client: ``owned`` are the keys the client itself needs (group,
    commits, delivery guarantee, timeouts) and win over everything else."""
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
    return config | raw | dict(owned or {})


def admin_client(kafka: KafkaSettings, client_id: str = "ddbridge-admin") -> AdminClient:
    """An admin client with the configured brokers and security."""
    return AdminClient(client_config(kafka, client_id))


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
