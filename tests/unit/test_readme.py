"""The README stays true: its configuration reference is the models', its command reference names
every CLI command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main

from bridge.config import load_settings
from bridge.config_doc import block, types_block
from ddbridge.main import app
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_the_configuration_reference_is_generated_from_the_models() -> None:
    assert block() in README, "the README's configuration reference is stale: run `make docs`"


def _commands(group: typer.Typer, prefix: str = "ddbridge") -> list[str]:
    click_group = typer.main.get_command(group)
    out: list[str] = []

    def walk(command: object, path: str) -> None:
        children = getattr(command, "commands", None)
        if children:
            for name, child in children.items():
                walk(child, f"{path} {name}")
        else:
            out.append(path)

    walk(click_group, prefix)
    return out


def test_the_command_reference_names_every_command() -> None:
    commands = _commands(app)
    assert "ddbridge reconcile" in commands and "ddbridge tombstones purge" in commands
    missing = [c for c in commands if f"`{c}" not in README]
    assert not missing, f"commands missing from the README's command reference: {missing}"


def test_the_types_reference_is_generated_from_the_type_policy() -> None:
    assert types_block() in README, "the README's types reference is stale: run `make docs`"


def _production_blocks() -> list[str]:
    """The TOML blocks of the README's production notes."""
    section = README.split("## Production notes", 1)[1].split("\n## ", 1)[0]
    return [
        "\n".join(line.strip() for line in block.split("```", 1)[0].splitlines())
        for block in section.split("```toml\n")[1:]
    ]


def test_every_production_config_block_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = _production_blocks()
    assert len(blocks) >= 4
    for number, text in enumerate(blocks):
        for path in re.findall(r'_file = "([^"]+)"', text):  # the mounted secrets, here as files
            secret = tmp_path / Path(path).name
            secret.write_text("secret\n")
            text = text.replace(path, str(secret))
        config = tmp_path / f"block{number}.toml"
        config.write_text(text)
        load_settings(config)  # raises ConfigError (with the field) if a block is wrong
