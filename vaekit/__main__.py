"""``python -m vaekit``: the same as the ``vaekit`` command."""

from .cli import main

if __name__ == "__main__":
    main()
