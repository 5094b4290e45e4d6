"""The ``ddbridge`` command line: the top layer, above every job it runs."""
