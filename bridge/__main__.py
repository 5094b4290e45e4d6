"""``python -m bridge`` runs the ddbridge CLI."""

from bridge.cli import main

main()
