"""``python -m dynamo_lab ...`` is the ``dynamo-lab`` command."""

from .cli import main

main()
