"""Connector settings, read once from the environment."""

import os
from dataclasses import dataclass


def env_number(env, key, default, cast=int):
    """A numeric setting from the environment; a malformed one stops start-up."""
    raw = env.get(key)
    if raw in (None, ""):
        return default
    try:
        return cast(raw)
    except ValueError:
        raise SystemExit(f"{key} must be a number, got {raw!r}") from None


@dataclass(frozen=True)
class Config:
    api_key: str                 # the master token (EMBOUX_API_KEY)
    maildb_dsn: str              # MAILDB_DSN, a libpq URL or key=value string
    pool_max: int = 8            # connections per process
    default_quota_mb: int = 1024  # storage of a mailbox created without quota_mb
    max_body_bytes: int = 1024 * 1024

    @classmethod
    def from_env(cls, env=None):
        env = os.environ if env is None else env
        api_key = env.get("EMBOUX_API_KEY", "")
        dsn = env.get("MAILDB_DSN", "")
        if len(api_key) < 16:
            raise SystemExit("EMBOUX_API_KEY must be set to a master token of at least 16 characters")
        if not dsn:
            raise SystemExit("MAILDB_DSN must be set (postgresql://user:password@host:port/db)")
        return cls(
            api_key=api_key,
            maildb_dsn=dsn,
            pool_max=env_number(env, "EMBOUX_DB_POOL_MAX", 8),
            default_quota_mb=env_number(env, "EMBOUX_DEFAULT_QUOTA_MB", 1024),
        )
