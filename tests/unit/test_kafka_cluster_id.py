"""The KRaft cluster id given to ``kafka-storage format`` is never read as an option."""

from __future__ import annotations

from ops.stack import kafka_cluster_id


def test_an_id_that_would_start_with_a_dash_is_drawn_again() -> None:
    # 0xf8 is 0b111110xx: its first base64url digit is "-" (index 62).
    draws = iter([b"\xf8" + bytes(15), bytes(range(16))])
    assert kafka_cluster_id(lambda: next(draws)) == "AAECAwQFBgcICQoLDA0ODw"


def test_random_ids_are_22_characters_of_base64url() -> None:
    ids = {kafka_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
