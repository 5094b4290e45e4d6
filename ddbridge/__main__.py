"""``python -m ddbridge`` runs the ddbridge CLI."""

from ddbridge.main import main

if __name__ == "__main__":  # not when multiprocessing's spawn imports it in a child
    main()
