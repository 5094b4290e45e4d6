"""``python -m bridge`` runs the ddbridge CLI."""

from bridge.cli import main

if __name__ == "__main__":  # not when multiprocessing's spawn imports it in a child
    main()
