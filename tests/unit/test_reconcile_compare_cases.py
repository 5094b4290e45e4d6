"""The comparison's outcomes spelled out, one literal case each (what a reviewer reads in the report:
the kind, the source row's primary key and the reason), and the canonical forms the report shows."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from reconcile.canonical import canonical, digest, key_text, render
from reconcile.compare import Candidate, FullPass, _compare_partition
from reconcile.spill import Spill


def _compare(
    tmp_path: Path, source: list[tuple[str, bytes | None, str | None]], target: dict[str, bytes | None]
) -> FullPass:
    """``source``: (key, digest or None, refusal reason or None); ``target``: key -> digest, None = tombstone."""
    src, dst = Spill(tmp_path, "s", 1), Spill(tmp_path, "d", 1)
    for key, dig, reason in source:
        src.add((key,), ((key,), dig, (f"pk{key}",), reason))
    for key, tdig in target.items():
        dst.add((key,), ((key,), tdig))
    src.close()
    dst.close()
    result = FullPass()
    _compare_partition([src], dst, 0, result)
    return result


def test_each_outcome_carries_the_rows_key_and_the_reason(tmp_path: Path) -> None:
    result = _compare(
        tmp_path,
        [
            ("1", b"a", None),  # matches
            ("2", b"a", None),  # differs
            ("3", b"a", None),  # DynamoDB holds a tombstone
            ("4", b"a", None),  # DynamoDB has nothing
            ("5", None, "value too large"),  # refused by the codec, DynamoDB has an item
            ("6", None, "bad date"),  # refused, DynamoDB holds a tombstone
            ("7", None, "bad json"),  # refused, DynamoDB has nothing
        ],
        {"1": b"a", "2": b"b", "3": None, "5": b"a", "6": None, "8": b"a", "9": None},
    )
    assert sorted(result.candidates, key=lambda c: c.key) == [
        Candidate(("2",), "different", ("pk2",), ""),
        Candidate(("3",), "missing", ("pk3",), "DynamoDB holds a tombstone (deleted)"),
        Candidate(("4",), "missing", ("pk4",), ""),
        Candidate(("5",), "unstorable", ("pk5",), "value too large"),
        Candidate(("6",), "unstorable", ("pk6",), "bad date"),
        Candidate(("7",), "unstorable", ("pk7",), "bad json"),
        Candidate(("8",), "extra", None, ""),
    ]
    assert (result.source_rows, result.matched, result.target_live, result.target_tombstones) == (7, 1, 4, 3)
    assert result.tombstones_pending == 1  # key 9: a tombstone of a row PostgreSQL no longer has
    assert result.by_kind == {"different": 1, "missing": 2, "unstorable": 3, "extra": 1}


def test_render_shows_values_briefly() -> None:
    assert render(None) == "(absent)"
    assert render({"S": "paid"}) == "paid" and render({"N": "12.50"}) == "12.50"
    assert render({"BOOL": True}) == "true" and render({"BOOL": False}) == "false"
    assert render({"NULL": True}) == '{"NULL":true}'
    assert render({"L": [{"N": "1"}, {"S": "x"}]}) == '{"L":[{"N":"1"},{"S":"x"}]}'
    assert render({"S": "x" * 10}, limit=10) == "x" * 10  # exactly the limit: whole
    assert render({"S": "x" * 11}, limit=10) == "x" * 9 + "…"  # one more: cut, and says so
    assert render({"S": "y" * 200}) == "y" * 79 + "…"  # the default limit is 80


def test_canonical_forms_sets_sorted_and_binary_as_base64() -> None:
    assert canonical({"b": {"SS": {"z", "a"}}, "a": {"B": b"\x00\x01"}}) == b'{"a":{"B":"AAE="},"b":{"SS":["a","z"]}}'
    assert canonical({"a": {"B": bytearray(b"\xff")}}) == b'{"a":{"B":"/w=="}}'
    with pytest.raises(TypeError, match="complex"):
        canonical({"a": {"N": complex(1, 2)}})
    item = {"x": {"N": "1"}}
    assert digest(item) == hashlib.blake2b(b'{"x":{"N":"1"}}', digest_size=16).digest()
    assert len(digest(item)) == 16


def test_key_text_is_base64_for_binary_whichever_client_read_it() -> None:
    assert key_text({"B": b"\x00\x01"}) == "AAE="  # boto3: bytes
    assert key_text({"B": bytearray(b"\x00\x01")}) == "AAE="
    assert key_text({"B": "AAE="}) == "AAE="  # the lean client: wire form, base64 text already
    assert key_text({"N": "42"}) == "42" and key_text({"S": "a#b"}) == "a#b"


def test_every_match_is_counted(tmp_path: Path) -> None:
    result = _compare(
        tmp_path, [("1", b"a", None), ("2", b"b", None), ("3", b"c", None)], {"1": b"a", "2": b"b", "3": b"c"}
    )
    assert (result.matched, result.candidates) == (3, [])


def test_two_rows_mapping_to_one_item_key_are_both_reported(tmp_path: Path) -> None:
    src, dst = Spill(tmp_path, "s", 1), Spill(tmp_path, "d", 1)
    src.add(("k",), (("k",), b"a", ("10",), None))
    src.add(("k",), (("k",), b"b", ("11",), None))
    dst.add(("k",), (("k",), b"b"))
    src.close()
    dst.close()
    result = FullPass()
    _compare_partition([src], dst, 0, result)
    assert [(c.key, c.kind, c.pk) for c in result.candidates] == [
        (("k",), "unstorable", ("11",)),
        (("k",), "unstorable", ("10",)),
    ]
    assert all("rows (10) and (11) map to one item key" in c.detail for c in result.candidates)
    assert result.matched == 0 and result.source_rows == 2
