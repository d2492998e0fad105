"""``python -m jaxrl.report build [--check]``: see ``jaxrl.report.build``."""

from jaxrl.report.build import main

if __name__ == "__main__":
    raise SystemExit(main())
