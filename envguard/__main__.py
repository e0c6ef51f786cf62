"""``python -m envguard`` runs the command line."""

from envguard.cli import main

main()
