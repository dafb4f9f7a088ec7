"""``python -m datasafe.cli``: the same as the ``datasafe`` command."""

from datasafe.cli.main import main

main()
