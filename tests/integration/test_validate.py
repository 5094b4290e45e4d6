"""``ddbridge validate`` through the real stack: each broken precondition is caught with a clear message."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
from psycopg import sql

from bridge.config import Settings
from connectors.debezium import wait_until_streaming
from ops.initialize import initialize
from tests.integration.pipeline import Cli

SCHEMA = """
CREATE TABLE public.accounts (id text PRIMARY KEY, region text, num int NOT NULL, name text NOT NULL);
INSERT INTO public.accounts VALUES ('1', 'eu', 5, 'one'), ('2', 'us', 5, 'two'),
    ('c', 'eu', 1, 'a#b'), ('b#c', 'eu', 12, 'a'),  -- both get the item key eu / 'a#b#c'
    ('4', NULL, 7, 'no region');
"""


def _accounts(isolated: Settings, gsi_sort: str | None = None) -> Settings:
    """A mapping whose key uses non-key columns: region + '{name}#{id}' (which text with '#' makes collide)."""
    data = isolated.model_dump(mode="python")
    gsi: dict[str, object] = {"name": "NameIndex", "partition_key": {"name": "Name", "type": "S"}}
    if gsi_sort:
        gsi["sort_key"] = {"name": gsi_sort, "type": "N"}
    data["tables"] = [
        {
            "source": "public.accounts",
            "target": isolated.tables[0].target + "_acc",
            "primary_key": ["id"],
            "partition_key": {"name": "Region", "template": "{region}"},
            "sort_key": {"name": "Sk", "template": "{name}#{id}"},
            "gsis": [gsi],
        }
    ]
    return Settings(**data)


def _lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.strip()]


def test_validate_catches_each_broken_precondition(isolated: Settings, tmp_path: Path) -> None:
    settings = _accounts(isolated)
    cli = Cli(settings, tmp_path)
    dsn = settings.source.dsn.get_secret_value()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)

    # Before init: bad data fails; what init creates is only "todo".
    bad = cli.run("validate", "--detailed-errors")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    out = bad.stdout
    assert "❌ source   1 rows with NULL region" in out and "id=4" in out
    assert "❌ source   1 rows share an item key" in out
    assert (
        "Region=eu, Sk=a#b#c: rows (id=c) and (id=b#c)" in out or "Region=eu, Sk=a#b#c: rows (id=b#c) and (id=c)" in out
    )
    assert "⏳ target   DynamoDB table" in out and "⏳ source   publication" in out

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM accounts WHERE id IN ('b#c', '4')")
    ready = cli.run("validate")
    assert ready.returncode == 0, ready.stdout + ready.stderr
    assert "ready for `ddbridge init`" in ready.stdout + ready.stderr

    initialize(settings)
    wait_until_streaming(settings)
    good = cli.run("--json", "validate")
    assert good.returncode == 0, good.stdout + good.stderr
    checks = json.loads(good.stdout)
    not_passed = [c for c in checks if c["status"] != "pass"]
    # The only remark: '{name}#{id}' joins two text columns (which is how the collision above was made).
    assert [(c["name"], c["status"]) for c in not_passed] == [("key templates", "warn")], not_passed
    assert "joins text columns name, id" in not_passed[0]["figure"]

    # Replica identity the derived key needs.
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE accounts REPLICA IDENTITY DEFAULT")
    ident = cli.run("validate")
    assert ident.returncode == 1
    assert "❌ source   REPLICA IDENTITY DEFAULT (the item key uses non-key columns: needs FULL)" in ident.stdout
    assert "ALTER TABLE public.accounts REPLICA IDENTITY FULL" in ident.stdout
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE accounts REPLICA IDENTITY FULL")

    # A GSI with another key than the mapping's.
    (tmp_path / "other").mkdir()
    other = Cli(_accounts(isolated, gsi_sort="Num"), tmp_path / "other")
    wrong = other.run("validate")
    assert wrong.returncode == 1
    assert (
        "❌ target   GSI NameIndex keys are [('Name', 'HASH')], mapping needs [('Name', 'HASH'), ('Num', 'RANGE')]"
        in (wrong.stdout)
    )

    # A deferrable primary key lets a transaction swap keys between rows.
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE accounts DROP CONSTRAINT accounts_pkey, ADD PRIMARY KEY (id) DEFERRABLE")
    deferred = cli.run("validate")
    assert deferred.returncode == 1
    assert "❌ source   PRIMARY KEY (id) of public.accounts is DEFERRABLE" in deferred.stdout, deferred.stdout
    assert "DROP CONSTRAINT accounts_pkey, ADD PRIMARY KEY (id)" in deferred.stdout
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE accounts DROP CONSTRAINT accounts_pkey, ADD PRIMARY KEY (id)")

    # The publication disappears (after init: a failure, not a todo).
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP PUBLICATION {}").format(sql.Identifier(settings.connect.publication_name)))
    gone = cli.run("validate")
    assert gone.returncode == 1
    assert f"❌ source   publication {settings.connect.publication_name} does not exist" in gone.stdout
