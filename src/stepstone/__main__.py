"""``python -m stepstone`` is the ``stepstone`` command."""

from stepstone.cli.entry import main

if __name__ == "__main__":
    raise SystemExit(main())
