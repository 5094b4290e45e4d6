"""Items in comparable form, pure: bookkeeping stripped, keys as text tuples, content digests and
field-level diffs. Both sides (PostgreSQL rows through the shared codec, DynamoDB items as read)
end up here, so equal content always gives an equal digest."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from bridge.codec import AttributeValue
from bridge.config import BookkeepingAttributes, KeyAttribute

Item = dict[str, AttributeValue]
KeyTexts = tuple[str, ...]


def bookkeeping_names(book: BookkeepingAttributes) -> frozenset[str]:
    """The attributes ddbridge adds to items (never compared with the source)."""
    return frozenset((book.source, book.lsn, book.deleted, book.ttl))


def content(item: Item, bookkeeping: frozenset[str]) -> Item:
    """The item without bookkeeping attributes."""
    return {name: value for name, value in item.items() if name not in bookkeeping}


def key_text(value: AttributeValue) -> str:
    """A key attribute's text as ``ItemKey.parts`` holds it: binary as base64, whether read through
    boto3 (bytes) or in wire form (base64 text already)."""
    inner = next(iter(value.values()))
    return base64.b64encode(inner).decode() if isinstance(inner, bytes | bytearray) else str(inner)


def key_texts(item: Item, key_attributes: list[KeyAttribute]) -> KeyTexts:
    """An item's key as the text of each key attribute (as ``ItemKey.parts`` holds it)."""
    out = []
    for spec in key_attributes:
        value = item.get(spec.name)
        if value is None:
            raise KeyError(spec.name)
        out.append(key_text(value))
    return tuple(out)


def _default(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if isinstance(value, set | frozenset):  # string/number sets: order is not meaningful
        return sorted(value)  # type: ignore[return-value]
    raise TypeError(type(value).__name__)


def canonical(item: Item) -> bytes:
    """A canonical serialization: attribute and map keys sorted, binary as base64."""
    return orjson.dumps(item, option=orjson.OPT_SORT_KEYS, default=_default)


def digest(item: Item) -> bytes:
    """A 16-byte digest of an item's canonical form."""
    return hashlib.blake2b(canonical(item), digest_size=16).digest()


def render(value: AttributeValue | None, limit: int = 80) -> str:
    """A short, readable form of an attribute value (``None`` when absent)."""
    if value is None:
        return "(absent)"
    (type_, inner), *_ = value.items()
    if type_ in ("S", "N"):
        text = str(inner)
    elif type_ == "BOOL":
        text = "true" if inner else "false"
    else:
        text = canonical({"v": value}).decode()[5:-1]
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class FieldDiff:
    """One attribute that differs: what PostgreSQL says and what DynamoDB holds."""

    attribute: str
    expected: str
    actual: str


def field_diff(expected: Item | None, actual: Item | None) -> list[FieldDiff]:
    """Attribute-level differences (content only: pass items through ``content`` first)."""
    expected, actual = expected or {}, actual or {}
    diffs = []
    for name in sorted(expected.keys() | actual.keys()):
        want, have = expected.get(name), actual.get(name)
        if want is None or have is None or canonical(want) != canonical(have):
            shown_want, shown_have = render(want), render(have)
            if (
                want is not None
                and have is not None
                and (next(iter(want)) != next(iter(have)) or shown_want == shown_have)
            ):
                # the same text as another DynamoDB type ("18 -> 18") says nothing: name the types
                shown_want, shown_have = f"{shown_want} ({next(iter(want))})", f"{shown_have} ({next(iter(have))})"
            diffs.append(FieldDiff(name, shown_want, shown_have))
    return diffs
