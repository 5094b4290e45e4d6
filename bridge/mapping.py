"""A source row (column -> attribute value from the codec) as a DynamoDB item, per a table mapping.

Pure: no I/O. The item key comes from the mapping's key templates; bookkeeping attributes are added
by ``bridge.rules``, not here.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.codec import AttributeValue, scalar_text
from bridge.config import KeyAttribute, TableMapping
from bridge.errors import CodecError

Row = dict[str, AttributeValue | None]


@dataclass(frozen=True, slots=True)
class ItemKey:
    """A DynamoDB item key, hashable: the target table and its (attribute, type, text) parts."""

    table: str
    parts: tuple[tuple[str, str, str], ...]

    def as_dynamo(self) -> dict[str, AttributeValue]:
        """The key in DynamoDB's wire form, e.g. ``{"CustomerId": {"N": "7"}}``."""
        return {name: {type_: text} for name, type_, text in self.parts}

    def __str__(self) -> str:
        return ", ".join(f"{name}={text}" for name, _, text in self.parts)


class RowMapper:
    """Maps rows of one source table to items of its DynamoDB table."""

    def __init__(self, mapping: TableMapping) -> None:
        self.mapping = mapping
        self.excluded = frozenset(mapping.exclude_columns)
        self._names: dict[str, str] = {}
        self._item_names: dict[str, str] = {}  # column -> attribute, "" when excluded
        self.key_attributes = [mapping.partition_key] + ([mapping.sort_key] if mapping.sort_key else [])
        self.key_names = [spec.name for spec in self.key_attributes]
        self.key_types = [spec.type for spec in self.key_attributes]

    def attribute(self, column: str) -> str:
        """The attribute name of a column (cached)."""
        name = self._names.get(column)
        if name is None:
            name = self._names[column] = self.mapping.attribute_name(column)
        return name

    def _key_part(self, spec: KeyAttribute, row: Row) -> tuple[str, str, str]:
        texts: dict[str, str] = {}
        for column in spec.columns:
            if column not in row:
                raise CodecError(f"key column {column} is missing from the row", column)
            value = row[column]
            if value is None:
                raise CodecError(f"key column {column} is NULL; DynamoDB key attributes must have a value", column)
            texts[column] = scalar_text(value)
        text = spec.template.format(**texts)
        if spec.type == "N":
            value = row[spec.columns[0]]
            if value is None or "N" not in value:
                raise CodecError(f"key {spec.name} is type N but the value is not a number", spec.columns[0])
        elif text == "":
            raise CodecError(f"key {spec.name} would be an empty string; DynamoDB keys must be non-empty")
        return (spec.name, spec.type, text)

    def key(self, row: Row) -> ItemKey:
        """The item key of a row (only the key columns need be present)."""
        return ItemKey(self.mapping.target, tuple(self._key_part(spec, row) for spec in self.key_attributes))

    def item(self, row: Row) -> tuple[ItemKey, dict[str, AttributeValue]]:
        """The item key and the full item (data attributes + key attributes; NULLs omitted)."""
        key = self.key(row)
        item: dict[str, AttributeValue] = {}
        names = self._item_names
        for column, value in row.items():
            if value is not None:
                name = names.get(column)
                if name is None:
                    name = names[column] = "" if column in self.excluded else self.attribute(column)
                if name:
                    item[name] = value
        item.update(key.as_dynamo())
        return key, item
