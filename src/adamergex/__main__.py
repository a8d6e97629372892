"""``python -m adamergex`` runs the command line."""

from adamergex.cli import main

main()
