"""Connector settings, read once from the environment."""

from dataclasses import dataclass

from . import settings


@dataclass(frozen=True)
class Config:
    api_key: str                 # the master token (EMBOUX_API_KEY)
    maildb_dsn: str              # MAILDB_DSN, a libpq URL or key=value string
    pool_max: int = 8            # connections per process
    default_quota_mb: int = 1024  # storage of a mailbox created without quota_mb
    max_body_bytes: int = 1024 * 1024

    @classmethod
    def from_env(cls, env=None):
        api_key = settings.get("EMBOUX_API_KEY", env) or ""
        dsn = settings.get("MAILDB_DSN", env) or ""
        if len(api_key) < 16:
            raise SystemExit("EMBOUX_API_KEY must be set to a master token of at least 16 characters")
        if not dsn:
            raise SystemExit("MAILDB_DSN must be set (postgresql://user:password@host:port/db)")
        return cls(
            api_key=api_key,
            maildb_dsn=dsn,
            pool_max=settings.number("EMBOUX_DB_POOL_MAX", env),
            default_quota_mb=settings.number("EMBOUX_DEFAULT_QUOTA_MB", env),
        )
