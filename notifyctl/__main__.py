"""`python -m notifyctl`: the same as the installed `notifyctl` command."""

from __future__ import annotations

from notifyctl.app import app

if __name__ == "__main__":
    app()
