"""The type policy: every PostgreSQL column type is either given a codec type (``bridge.codec``), with
identical items on the change stream and the direct read, or refused with the reason and the remedy.

``classify`` is pure: it resolves a type from the catalog rows of ``pg_type`` (a domain to its base
type, an enum to ``TEXT``, an array to ``_`` + its element) and says what Debezium would do with it.
What is refused was found by reading real Debezium 3 events of every type family: the connector drops
some columns from its events (``box``, ``pg_lsn``, composite types, multiranges, arrays of domains,
``money[]``, ``interval[]``, ``xml[]``, ``name[]``), sends ``name`` as NULL, sends bit strings as bytes
without their length, and renders ``tstzrange`` in the Connect worker's time zone.

``TypeRegistry`` gives the stream the codec type of a type *name* as Debezium reports it
(``__debezium.source.column.type``); built-in names resolve without a database, domains and enums
from the catalog, loaded when a name is first unknown.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bridge.codec import ARRAY_ELEMENT_TYPES, CODEC_TYPES, TEXT_TYPES
from bridge.errors import CodecError

# Built-in (pg_catalog) base types and the codec type each is stored as.
BUILTIN: dict[str, str] = {
    **{t.lower(): t for t in CODEC_TYPES if not t.startswith("_") and t not in ("CITEXT", "LTREE", "HSTORE")},
}
# Extension types, recognised by name in whichever schema the extension lives.
EXTENSION: dict[str, str] = {"citext": "CITEXT", "ltree": "LTREE", "hstore": "HSTORE"}
RANGES = {"int4range", "int8range", "numrange", "daterange", "tsrange"}
ARRAY_REFUSALS = {
    "MONEY": "Debezium drops money[] columns from its events",
    "INTERVAL": "Debezium drops interval[] columns from its events",
    "XML": "Debezium drops xml[] columns from its events",
    "TIMETZ": "Debezium drops the fractional seconds of timetz[] elements",
}
# Read through a cast so the text is locale-free (money's output carries the currency symbol).
READ_AS_NUMERIC = {"MONEY"}
REMEDY = (
    "exclude the column (tables.exclude_columns), or change its type to one ddbridge supports "
    "(README: Supported PostgreSQL types)"
)

REFUSED_BUILTIN: dict[str, str] = {
    "name": "Debezium sends name columns as NULL",
    "bit": "Debezium sends bit strings as bytes without their length",
    "varbit": "Debezium sends bit strings as bytes without their length",
    "tstzrange": "Debezium renders tstzrange in the Connect worker's time zone, not the session's",
    "pg_lsn": "Debezium drops pg_lsn columns from its events",
    "point": "geometric types have no exact DynamoDB form",
    "line": "geometric types have no exact DynamoDB form",
    "lseg": "geometric types have no exact DynamoDB form",
    "box": "Debezium drops box columns from its events",
    "path": "geometric types have no exact DynamoDB form",
    "polygon": "geometric types have no exact DynamoDB form",
    "circle": "geometric types have no exact DynamoDB form",
}


@dataclass(frozen=True, slots=True)
class PgType:
    """One row of ``pg_type``, as far as the policy needs it."""

    oid: int
    schema: str
    name: str
    typtype: str  # b(ase) c(omposite) d(omain) e(num) p(seudo) r(ange) m(ultirange)
    category: str
    element: int  # typelem (arrays)
    base: int  # typbasetype (domains)


@dataclass(frozen=True, slots=True)
class TypeDecision:
    """What ddbridge does with a type: its codec type, or why it is refused."""

    codec: str | None
    refused: str | None = None
    via_numeric: bool = False  # read with ::numeric on the direct path

    @property
    def supported(self) -> bool:
        return self.codec is not None


def _refuse(reason: str) -> TypeDecision:
    return TypeDecision(None, reason)


def classify(oid: int, types: dict[int, PgType]) -> TypeDecision:
    """The decision for type ``oid``, resolving domains and arrays through ``types``."""
    info = types.get(oid)
    if info is None:
        return _refuse(f"type oid {oid} is not in the catalog")
    if info.typtype == "d":
        base = classify(info.base, types)
        if base.codec is not None and base.codec.startswith("_"):
            return _refuse("Debezium drops domains over arrays from its events")
        return base
    if info.typtype == "e":
        return TypeDecision("TEXT")
    if info.category == "A" and info.name.startswith("_") and info.element:
        element = types.get(info.element)
        if element is not None and element.typtype == "d":
            return _refuse("Debezium drops arrays of domains from its events")
        inner = classify(info.element, types)
        if inner.codec is None:
            return _refuse(f"arrays of {element.name if element else '?'}: {inner.refused}")
        if inner.codec in ARRAY_REFUSALS:
            return _refuse(ARRAY_REFUSALS[inner.codec])
        if inner.codec not in ARRAY_ELEMENT_TYPES:
            return _refuse(f"{inner.codec.lower()}[] columns have no tested exact form in ddbridge")
        return TypeDecision("_" + inner.codec)
    if info.typtype == "r":
        if info.schema == "pg_catalog" and info.name in RANGES:
            return TypeDecision(info.name.upper())
        return _refuse(REFUSED_BUILTIN.get(info.name, f"range type {info.name} is not one Debezium renders exactly"))
    if info.typtype == "c":
        return _refuse("Debezium drops composite-type columns from its events")
    if info.typtype == "m":
        return _refuse("Debezium drops multirange columns from its events")
    if info.typtype != "b":
        return _refuse(f"{info.name} is a pseudo-type")
    if info.schema == "pg_catalog":
        if info.name in BUILTIN:
            codec = BUILTIN[info.name]
            return TypeDecision(codec, via_numeric=codec in READ_AS_NUMERIC)
        return _refuse(REFUSED_BUILTIN.get(info.name, f"{info.name} has no exact DynamoDB form in ddbridge"))
    if info.name in EXTENSION:
        return TypeDecision(EXTENSION[info.name])
    return _refuse(f"{info.schema}.{info.name} is a type ddbridge does not know")


def describe(decision: TypeDecision) -> str:
    """How a supported codec type is stored, for reports and the README."""
    codec = decision.codec or ""
    if codec.startswith("_"):
        return f"L of ({describe(TypeDecision(codec[1:]))})"
    return STORED_AS.get(codec, "S, PostgreSQL's text" if codec in TEXT_TYPES else "?")


STORED_AS = {
    "INT2": "N",
    "INT4": "N",
    "INT8": "N",
    "OID": "N",
    "NUMERIC": "N, exact (NaN refused; more than 38 significant digits refused)",
    "MONEY": "N, exact, without the currency symbol",
    "FLOAT4": "N, shortest round-trip decimal (NaN/Infinity refused)",
    "FLOAT8": "N, shortest round-trip decimal (NaN/Infinity refused)",
    "BOOL": "BOOL",
    "DATE": "S `YYYY-MM-DD` (years 1-9999; infinity and BC refused)",
    "TIMESTAMP": "S `YYYY-MM-DDTHH:MM:SS.ffffff` (years 1-9999; infinity and BC refused)",
    "TIMESTAMPTZ": "S `YYYY-MM-DDTHH:MM:SS.ffffffZ`, in UTC",
    "TIME": "S `HH:MM:SS.ffffff` (24:00:00 kept)",
    "TIMETZ": "S `HH:MM:SS.ffffffZ`, in UTC (24:00 refused)",
    "INTERVAL": "S `PnYnMnDTnHnMnS`, every field",
    "JSON": "M / L / S / N / BOOL / NULL, numbers exact",
    "JSONB": "M / L / S / N / BOOL / NULL, numbers exact",
    "HSTORE": "M of S / NULL",
    "BYTEA": "B",
}


@dataclass(frozen=True, slots=True)
class Column:
    """A column of a source table and what ddbridge does with it."""

    name: str
    declared: str  # format_type(), e.g. numeric(10,2)
    type_name: str  # pg_type.typname
    decision: TypeDecision
    dimensions: int = 0  # attndims as declared
    generated: bool = False

    @property
    def refusal(self) -> str | None:
        """Why this column cannot be copied exactly, or None."""
        if self.generated:
            return "PostgreSQL does not publish generated columns to logical replication (PostgreSQL < 18)"
        if self.dimensions > 1:
            return "Debezium cannot send multi-dimensional arrays"
        return self.decision.refused


TYPES_QUERY = (
    "SELECT t.oid::int8, n.nspname, t.typname, t.typtype, t.typcategory, t.typelem::int8, t.typbasetype::int8 "
    "FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
)
COLUMNS_QUERY = (
    "SELECT a.attname, a.atttypid::int8, format_type(a.atttypid, a.atttypmod), a.attndims, a.attgenerated = 's' "
    "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
)


def load_types(conn: Any) -> dict[int, PgType]:
    """Every type of the database (``conn`` is a psycopg connection)."""
    rows: Iterable[Sequence[Any]] = conn.execute(TYPES_QUERY).fetchall()
    return {
        int(r[0]): PgType(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), int(r[5]), int(r[6])) for r in rows
    }


def table_columns(conn: Any, schema: str, table: str, types: dict[int, PgType] | None = None) -> list[Column]:
    """The columns of ``schema.table`` in table order, each with its decision."""
    types = load_types(conn) if types is None else types
    rows = conn.execute(COLUMNS_QUERY, (schema, table)).fetchall()
    if not rows:
        raise CodecError(f"table {schema}.{table} does not exist or has no columns")
    columns = []
    for name, oid, declared, dims, generated in rows:
        info = types.get(int(oid))
        columns.append(
            Column(
                str(name),
                str(declared),
                info.name if info else "?",
                classify(int(oid), types),
                int(dims or 0),
                bool(generated),
            )
        )
    return columns


def registry_entries(types: dict[int, PgType]) -> dict[str, TypeDecision]:
    """Upper-cased type name -> decision, as Debezium names types; a name two schemas define with
    different decisions is refused as ambiguous."""
    out: dict[str, TypeDecision] = {}
    for oid, info in types.items():
        name = info.name.upper()
        decision = classify(oid, types)
        if name in out and out[name] != decision:
            decision = _refuse(f"two schemas define a type {info.name} that ddbridge would store differently")
        out[name] = decision
    return out


def builtin_entries() -> dict[str, TypeDecision]:
    """The decisions of built-in and extension type names, without a database."""
    entries: dict[str, TypeDecision] = {}
    for name, codec in {**BUILTIN, **EXTENSION}.items():
        entries[name.upper()] = TypeDecision(codec)
        if codec in ARRAY_ELEMENT_TYPES:
            entries["_" + name.upper()] = TypeDecision("_" + codec)
    for name in RANGES:
        entries[name.upper()] = TypeDecision(name.upper())
    for name, reason in REFUSED_BUILTIN.items():
        entries[name.upper()] = _refuse(reason)
    return entries


class TypeRegistry:
    """Codec types by the type names of change events; unknown names load the catalog once per name."""

    def __init__(self, load: Callable[[], dict[int, PgType]] | None = None) -> None:
        self._entries = builtin_entries()
        self._load = load
        self._tried: set[str] = set()
        self._lock = threading.Lock()
        self._codecs: dict[str, str] = {}  # accepted names as the events spell them (the hot path)

    def decision(self, type_name: str) -> TypeDecision:
        """The decision for a type name as Debezium reports it (e.g. ``NUMERIC``, ``_MOOD``, ``MY_DOMAIN``)."""
        name = type_name.upper()
        found = self._entries.get(name)
        if found is not None:
            return found
        with self._lock:
            if self._load is not None and name not in self._tried:
                self._tried.add(name)
                self._entries = {**registry_entries(self._load()), **builtin_entries()}
                self._codecs = {}
            found = self._entries.get(name)
        return found if found is not None else _refuse(f"type {type_name} is not in the source database's catalog")

    def codec_type(self, type_name: str) -> str:
        """The codec type of a type name; a refused type is a CodecError naming the reason."""
        codec = self._codecs.get(type_name)
        if codec is not None:
            return codec
        decision = self.decision(type_name)
        if decision.codec is None:
            raise CodecError(f"type {type_name.lower()}: {decision.refused}; {REMEDY}")
        self._codecs[type_name] = decision.codec
        return decision.codec


STRUCTURAL_REFUSALS = [
    ("composite types", "Debezium drops composite-type columns from its events"),
    ("multiranges", "Debezium drops multirange columns from its events"),
    ("range types other than int4/int8/num/date/tsrange", "not rendered exactly by Debezium"),
    ("arrays of domains, domains over arrays", "Debezium drops them from its events"),
    ("money[], interval[], xml[], name[] and arrays of refused types", "Debezium drops them from its events"),
    ("timetz[]", "Debezium drops the fractional seconds of its elements"),
    ("multi-dimensional arrays (declared, or as a value)", "Debezium cannot send them"),
    ("arrays with a lower bound other than 1 (a value)", "a DynamoDB list cannot keep the bound"),
    ("generated columns", "PostgreSQL does not publish them to logical replication (PostgreSQL < 18)"),
    ("types of other extensions", "ddbridge does not know them"),
]


def reference() -> str:
    """The README's table of supported and refused types, from the policy itself."""
    rows: dict[tuple[str, str], list[str]] = {}
    for name, codec in {**BUILTIN, **EXTENSION}.items():
        array = "yes" if codec in ARRAY_ELEMENT_TYPES else "refused"
        rows.setdefault((describe(TypeDecision(codec)), array), []).append(f"`{name}`")
    rows[(describe(TypeDecision("TEXT")), "yes")].append("enum types")
    order = list(STORED_AS.values())
    lines = ["| PostgreSQL types | DynamoDB value | arrays (one dimension) |", "|---|---|---|"]
    for (stored, array), shown in sorted(
        rows.items(), key=lambda r: (order.index(r[0][0]) if r[0][0] in order else 4, r)
    ):
        lines.append(f"| {', '.join(sorted(shown))} | {stored} | {array} |")
    lines += [
        "",
        "A domain is stored as its base type. Refused, with the reason `ddbridge validate` gives:",
        "",
        "| refused | why |",
        "|---|---|",
    ]
    lines += [f"| `{name}` | {reason} |" for name, reason in sorted(REFUSED_BUILTIN.items())]
    lines += [f"| {name} | {reason} |" for name, reason in STRUCTURAL_REFUSALS]
    return "\n".join(lines) + "\n"
