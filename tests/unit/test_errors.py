"""Errors carry where they happened, for --json output; an unknown context name is a bug."""

from __future__ import annotations

import pytest

from bridge.errors import CodecError, ConfigError, DdbridgeError


def test_context_fields_reach_the_machine_readable_form_and_none_is_left_out() -> None:
    error = ConfigError("bad", table="public.payments", key=None, lsn=7)
    assert error.to_dict() == {"error": "ConfigError", "message": "bad", "table": "public.payments", "lsn": 7}
    assert error.exit_code == 2


def test_a_codec_error_names_its_column_in_the_message_and_the_context() -> None:
    error = CodecError("NaN has no DynamoDB form", "amount")
    assert str(error) == "column amount: NaN has no DynamoDB form"
    assert error.context == {"column": "amount"} and error.reason == "NaN has no DynamoDB form"


def test_an_unknown_context_name_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="tabel"):
        DdbridgeError("x", tabel="t")
