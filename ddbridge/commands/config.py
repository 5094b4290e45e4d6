"""``ddbridge config show``."""

from __future__ import annotations

import json

from ddbridge.app import config_app
from ddbridge.output import console, emit, run, state


@config_app.command("show")
def config_show() -> None:
    """Print the effective configuration (file + DDBRIDGE_* environment), secrets masked."""
    settings = run(state.settings)
    data = json.loads(settings.model_dump_json())
    emit(data, lambda: console.print_json(data=data))
