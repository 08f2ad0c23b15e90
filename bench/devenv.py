"""var/dev.env for the benchmarks: where the running stack is."""

import os
import pathlib
import shlex

ROOT = pathlib.Path(__file__).resolve().parent.parent


def dev_env():
    """var/dev.env as a dict (KEY='value' lines, shell-quoted)."""
    env = {}
    for line in (ROOT / "var" / "dev.env").read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = shlex.split(value)[0] if value.strip() else ""
    return env


def export_dev_env():
    """Put var/dev.env into os.environ (values already set there win)."""
    for key, value in dev_env().items():
        os.environ.setdefault(key, value)
