"""The type policy (bridge/pgtypes.py): which catalog types get which codec type, which are refused and
why, and how the stream's registry resolves Debezium's type names."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from bridge.errors import CodecError
from bridge.events import SOURCE_TYPE, parse_change_event
from bridge.pgtypes import Column, PgType, TypeDecision, TypeRegistry, classify, registry_entries


def envelope(after: dict[str, Any], types: dict[str, tuple[str, str]]) -> bytes:
    """A create event of ``after``, each column with its (Connect type, type name as Debezium reports it)."""
    fields = [
        {"field": c, "type": connect, "optional": True, "parameters": {SOURCE_TYPE: pg}}
        for c, (connect, pg) in types.items()
    ]
    row = {"type": "struct", "fields": fields, "optional": True}
    schema = {"type": "struct", "fields": [{**row, "field": "before"}, {**row, "field": "after"}]}
    source = {"schema": "public", "table": "t", "lsn": 100, "ts_ms": 1}
    return orjson.dumps({"schema": schema, "payload": {"op": "c", "before": None, "after": after, "source": source}})


# A small catalog: oids are arbitrary, names and kinds as PostgreSQL has them.
CATALOG = {
    t.oid: t
    for t in [
        PgType(1, "pg_catalog", "numeric", "b", "N", 0, 0),
        PgType(2, "pg_catalog", "_numeric", "b", "A", 1, 0),
        PgType(3, "pg_catalog", "money", "b", "N", 0, 0),
        PgType(4, "pg_catalog", "_money", "b", "A", 3, 0),
        PgType(5, "public", "amount", "d", "N", 0, 1),  # domain over numeric
        PgType(6, "public", "_amount", "b", "A", 5, 0),
        PgType(7, "public", "positive_amount", "d", "N", 0, 5),  # domain over a domain
        PgType(8, "public", "mood", "e", "E", 0, 0),
        PgType(9, "public", "_mood", "b", "A", 8, 0),
        PgType(10, "ext", "citext", "b", "S", 0, 0),
        PgType(11, "ext", "_citext", "b", "A", 10, 0),
        PgType(12, "pg_catalog", "name", "b", "S", 0, 0),
        PgType(13, "pg_catalog", "tstzrange", "r", "R", 0, 0),
        PgType(14, "pg_catalog", "int4range", "r", "R", 0, 0),
        PgType(15, "public", "pair", "c", "C", 0, 0),
        PgType(16, "pg_catalog", "int4multirange", "m", "R", 0, 0),
        PgType(17, "pg_catalog", "_int4", "b", "A", 18, 0),
        PgType(18, "pg_catalog", "int4", "b", "N", 0, 0),
        PgType(19, "public", "int_list", "d", "A", 0, 17),  # domain over an array
        PgType(20, "pg_catalog", "interval", "b", "T", 0, 0),
        PgType(21, "pg_catalog", "_interval", "b", "A", 20, 0),
        PgType(22, "pg_catalog", "bit", "b", "V", 0, 0),
        PgType(23, "other", "mood", "b", "S", 0, 0),  # the same name in another schema, another kind
        PgType(24, "pg_catalog", "xml", "b", "U", 0, 0),
        PgType(25, "pg_catalog", "_xml", "b", "A", 24, 0),
        PgType(26, "pg_catalog", "hstore_like", "b", "U", 0, 0),
    ]
}


@pytest.mark.parametrize(
    ("oid", "codec"),
    [
        (1, "NUMERIC"),
        (2, "_NUMERIC"),
        (3, "MONEY"),
        (5, "NUMERIC"),
        (7, "NUMERIC"),
        (8, "TEXT"),
        (9, "_TEXT"),
        (10, "CITEXT"),
        (11, "_CITEXT"),
        (14, "INT4RANGE"),
        (17, "_INT4"),
        (20, "INTERVAL"),
        (24, "XML"),
    ],
)
def test_supported_types_resolve_to_their_codec_type(oid: int, codec: str) -> None:
    assert classify(oid, CATALOG) == TypeDecision(codec, None, via_numeric=codec == "MONEY")


@pytest.mark.parametrize(
    ("oid", "reason"),
    [
        (4, "Debezium drops money[] columns"),
        (6, "arrays of domains"),
        (12, "name columns as NULL"),
        (13, "time zone"),
        (15, "composite"),
        (16, "multirange"),
        (19, "domains over arrays"),
        (21, "interval[] columns"),
        (22, "bit strings"),
        (23, "other.mood is a type ddbridge does not know"),
        (25, "xml[] columns"),
        (26, "hstore_like has no exact DynamoDB form"),
        (99, "not in the catalog"),
    ],
)
def test_refused_types_say_why(oid: int, reason: str) -> None:
    decision = classify(oid, CATALOG)
    assert decision.codec is None and not decision.supported
    assert reason in (decision.refused or "")


def test_a_domain_over_money_is_read_through_numeric() -> None:
    catalog = {**CATALOG, 30: PgType(30, "public", "price", "d", "N", 0, 3)}
    assert classify(30, catalog) == TypeDecision("MONEY", None, via_numeric=True)


def test_columns_refuse_generated_and_multi_dimensional_declarations() -> None:
    supported = TypeDecision("_INT4")
    assert Column("a", "integer[]", "_int4", supported).refusal is None
    assert "multi-dimensional" in (Column("a", "integer[]", "_int4", supported, dimensions=2).refusal or "")
    generated = Column("g", "integer", "int4", TypeDecision("INT4"), generated=True)
    assert "generated columns" in (generated.refusal or "")
    assert Column("n", "name", "name", classify(12, CATALOG)).refusal == "Debezium sends name columns as NULL"


def test_a_type_name_two_schemas_resolve_differently_is_refused_as_ambiguous() -> None:
    entries = registry_entries(CATALOG)
    assert "two schemas" in (entries["MOOD"].refused or "")
    assert entries["AMOUNT"] == TypeDecision("NUMERIC")


def test_the_registry_knows_builtins_without_a_database() -> None:
    def no_database() -> dict[int, PgType]:
        raise AssertionError("built-in names must not load the catalog")

    registry = TypeRegistry(no_database)
    assert registry.codec_type("NUMERIC") == "NUMERIC"
    assert registry.codec_type("_TIMESTAMP") == "_TIMESTAMP"
    assert registry.codec_type("citext") == "CITEXT"
    assert registry.codec_type("INT8RANGE") == "INT8RANGE"
    with pytest.raises(CodecError, match="type name: Debezium sends name columns as NULL; exclude the column"):
        registry.codec_type("NAME")


def test_the_registry_loads_the_catalog_once_for_an_unknown_name() -> None:
    loads: list[int] = []

    def load() -> dict[int, PgType]:
        loads.append(1)
        return {k: v for k, v in CATALOG.items() if k != 23}

    registry = TypeRegistry(load)
    assert registry.codec_type("AMOUNT") == "NUMERIC"
    assert registry.codec_type("POSITIVE_AMOUNT") == "NUMERIC"
    assert registry.codec_type("_MOOD") == "_TEXT"
    assert len(loads) == 1
    with pytest.raises(CodecError, match="not in the source database's catalog"):
        registry.codec_type("NEVER_CREATED")
    with pytest.raises(CodecError, match="not in the source database's catalog"):
        registry.codec_type("NEVER_CREATED")
    assert len(loads) == 2  # one more load for the new name, not one per event


def test_a_catalog_reload_replaces_the_remembered_decisions() -> None:
    # amount is redefined as a domain over int4 between two loads; the reload for a new name must not
    # leave the first decision remembered
    catalogs = [
        {k: v for k, v in CATALOG.items() if k not in (7, 23)},
        {**{k: v for k, v in CATALOG.items() if k != 23}, 5: PgType(5, "public", "amount", "d", "N", 0, 18)},
    ]
    registry = TypeRegistry(lambda: catalogs.pop(0))
    assert registry.codec_type("AMOUNT") == "NUMERIC"
    assert registry.codec_type("AMOUNT") == "NUMERIC"
    assert registry.codec_type("POSITIVE_AMOUNT") == "INT4"  # not known yet: loads the catalog again
    assert registry.codec_type("AMOUNT") == "INT4"


def test_a_domain_column_is_decoded_as_its_base_type_on_the_stream() -> None:
    # Debezium reports a domain's own name: a numeric domain arrives as a string and must become N.
    registry = TypeRegistry(lambda: CATALOG)
    raw = envelope(
        {"id": 1, "fee": "5.10", "status": "happy"},
        {"id": ("int32", "INT4"), "fee": ("string", "AMOUNT"), "status": ("string", "MOOD")},
    )
    with pytest.raises(CodecError, match="two schemas"):
        parse_change_event(raw, registry)
    clean = TypeRegistry(lambda: {k: v for k, v in CATALOG.items() if k != 23})
    event = parse_change_event(raw, clean)
    assert event.after == {"id": {"N": "1"}, "fee": {"N": "5.1"}, "status": {"S": "happy"}}


def test_excluded_columns_are_never_decoded() -> None:
    raw = envelope({"id": 1, "point": {"x": 1.0, "y": 2.0}}, {"id": ("int32", "INT4"), "point": ("struct", "POINT")})
    with pytest.raises(CodecError, match=r"column point: .*geometric types"):
        parse_change_event(raw)
    assert parse_change_event(raw, excluded=frozenset({"point"})).after == {"id": {"N": "1"}}
