"""Configuration: file + environment + flags, the guide's aliases, and errors that name field and file."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import KeyAttribute, Settings, TableMapping, load_settings, template_columns
from bridge.dynamo import make_call, make_client
from bridge.errors import ConfigError
from bridge.lean_call import LeanCall
from tests.conftest import PAYMENTS_CONFIG

MAPPING = """
[[tables]]
source = "public.orders"
target = "Orders"
primary_key = ["order_id"]
partition_key = { name = "CustomerId", template = "{customer_id}", type = "N" }
sort_key = { name = "OrderKey", template = "{order_date}#{order_id}" }
"""


def _write(tmp_path: Path, text: str, name: str = "ddbridge.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_target_the_local_stack_except_dynamodb_which_is_aws(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DDBRIDGE_CONFIG", raising=False)
    settings = load_settings()
    assert settings.kafka.bootstrap_servers == "127.0.0.1:59092"
    assert settings.dynamodb.endpoint_url is None and settings.dynamodb.access_key_id is None
    assert settings.stack.ports.postgres != 5432, "must not collide with a system PostgreSQL"
    assert settings.connect.snapshot_mode == "no_data"


@pytest.mark.parametrize("dynamodb", ["", '[dynamodb]\nregion = "eu-west-1"\n'])
def test_a_config_without_an_endpoint_writes_to_aws_never_to_the_local_stack(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, dynamodb: str
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEY123456")  # what the AWS chain would find
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    region = "eu-west-1" if dynamodb else "us-east-1"
    settings = load_settings(_write(tmp_path, dynamodb + '[kafka]\nconsumer_group = "g"\n')).dynamodb
    assert make_client(settings).meta.endpoint_url == f"https://dynamodb.{region}.amazonaws.com"
    lean = make_call(settings, "PutItem", pool_size=1)
    assert isinstance(lean, LeanCall) and lean.host == f"dynamodb.{region}.amazonaws.com"
    assert lean.credentials.access_key == "AKIAEXAMPLEKEY123456"


def test_dynamodb_keys_come_in_pairs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="access_key_id and secret_access_key are set together"):
        load_settings(_write(tmp_path, '[dynamodb]\naccess_key_id = "local"\n'))


def test_payments_example_mapping_loads() -> None:
    settings = load_settings(PAYMENTS_CONFIG)
    mapping = settings.mapping("payments")
    assert mapping.target == "Payments"
    assert mapping.key_columns() == ["customer_id", "payment_date", "payment_id"]
    assert mapping.has_derived_key()
    assert mapping.attribute_name("payment_amount") == "PaymentAmount"
    assert [g.name for g in mapping.gsis] == ["PaymentStatusIndex", "LoanPaymentIndex", "PaymentMethodIndex"]


def test_precedence_flags_over_env_over_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = _write(tmp_path, '[kafka]\nbootstrap_servers = "file:1"\nconsumer_group = "from-file"\n')
    assert load_settings(path).kafka.bootstrap_servers == "file:1"
    monkeypatch.setenv("DDBRIDGE_KAFKA__BOOTSTRAP_SERVERS", "env:2")
    settings = load_settings(path)
    assert settings.kafka.bootstrap_servers == "env:2"
    assert settings.kafka.consumer_group == "from-file", "env must override one key, not the whole section"
    flagged = load_settings(path, overrides={"kafka": {"bootstrap_servers": "flag:3"}})
    assert flagged.kafka.bootstrap_servers == "flag:3"
    assert flagged.kafka.consumer_group == "from-file"


def test_guide_migration_config_json_names_are_accepted(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '{"BatchSize": 25, "MaxErrors": 100, "RetryAttempts": 3, "ThrottleBackoffMs": 1000,'
        ' "ProgressSaveInterval": 100}',
        "migration-config.json",
    )
    m = load_settings(path).migration
    assert (m.batch_size, m.max_errors, m.retry_attempts, m.throttle_backoff_ms, m.progress_save_interval) == (
        25,
        100,
        3,
        1000,
        100,
    )
    toml = _write(tmp_path, "[migration]\nBatchSize = 10\n")
    assert load_settings(toml).migration.batch_size == 10


def test_invalid_field_names_field_and_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[migration]\nbatch_size = 0\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert "migration.batch_size" in message and str(path) in message
    assert info.value.exit_code == 2


def test_unknown_key_is_an_error_not_ignored(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"kafka\.bootstrap_server"):
        load_settings(_write(tmp_path, '[kafka]\nbootstrap_server = "typo:1"\n'))


def test_missing_explicit_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid"):
        load_settings(_write(tmp_path, "[kafka\n"))


def test_key_must_cover_every_primary_key_column(tmp_path: Path) -> None:
    text = MAPPING.replace('template = "{order_date}#{order_id}"', 'template = "{order_date}"')
    with pytest.raises(ConfigError, match=r"must include every primary-key column.*order_id"):
        load_settings(_write(tmp_path, text))


def test_number_key_must_be_a_single_column(tmp_path: Path) -> None:
    text = MAPPING.replace('template = "{customer_id}", type = "N"', 'template = "c{customer_id}", type = "N"')
    with pytest.raises(ConfigError, match="single column"):
        load_settings(_write(tmp_path, text))


def test_source_must_be_schema_qualified(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tables\.0\.source"):
        load_settings(_write(tmp_path, MAPPING.replace('"public.orders"', '"orders"')))


def test_mapping_lookup(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, MAPPING))
    assert settings.mapping().source == "public.orders"
    assert settings.mapping("orders").target == "Orders"
    with pytest.raises(ConfigError, match="not mapped"):
        settings.mapping("payments")
    with pytest.raises(ConfigError, match="no \\[\\[tables\\]\\]"):
        Settings().mapping()


def test_secrets_are_masked() -> None:
    settings = load_settings(PAYMENTS_CONFIG)
    assert "ddbridge:ddbridge@" not in settings.model_dump_json()


def test_template_columns() -> None:
    assert template_columns("{payment_date}#{payment_id}") == ["payment_date", "payment_id"]
    with pytest.raises(ValueError, match="plain column"):
        template_columns("{a.b}")


@pytest.mark.parametrize("template", ["{a}{b}", "x{a}{b}#", "{a}#{b}{c}"])
def test_side_by_side_template_columns_are_refused(template: str) -> None:
    with pytest.raises(ValueError, match="side by side: two rows can give one key"):
        KeyAttribute(name="k", template=template)


@pytest.mark.parametrize("template", ["{a}#{b}", "A{a}-{b}Z", "{a}"])
def test_separated_template_columns_are_accepted(template: str) -> None:
    assert KeyAttribute(name="k", template=template).columns == template_columns(template)


@pytest.mark.parametrize(
    ("source", "schema", "table"),
    [
        ("public.payments", "public", "payments"),
        ('dbo."Payments"', "dbo", "Payments"),
        ('"Sales"."Order_Lines"', "Sales", "Order_Lines"),
        ("dbo.Payments", "dbo", "Payments"),
    ],
)
def test_source_accepts_plain_and_quoted_names(source: str, schema: str, table: str) -> None:
    mapping = TableMapping(
        source=source, target="Target", primary_key=["id"], partition_key=KeyAttribute(name="id", template="{id}")
    )
    assert (mapping.schema_name, mapping.table_name, mapping.source) == (schema, table, f"{schema}.{table}")


@pytest.mark.parametrize("source", ["payments", "a.b.c", 'dbo."a.b"', 'dbo."with space"', "dbo.", '"x.y"'])
def test_source_refuses_names_it_cannot_use(source: str) -> None:
    with pytest.raises(ValueError, match=r"must be 'schema\.table'"):
        TableMapping(
            source=source, target="Target", primary_key=["id"], partition_key=KeyAttribute(name="id", template="{id}")
        )
