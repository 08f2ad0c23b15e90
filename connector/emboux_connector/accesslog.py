"""gunicorn's access and error logs, without secrets.

Paths of the API-key endpoints carry the token itself (`/api-keys/{token}`,
as the contract has it), a careless client may send a token in a query
string, and gunicorn's error log quotes request lines: every line of both
logs goes through logs.redact() (see there what it hides). Use:
`gunicorn -c python:emboux_connector.gunicorn_conf` (which sets this class),
or `--logger-class emboux_connector.accesslog.RedactingLogger`.
"""

from gunicorn.glogging import Logger

from .logs import RedactingFormatter, redact, remember_secrets, secret_values

__all__ = ["RedactingLogger", "redact"]


class RedactingLogger(Logger):
    def setup(self, cfg):
        super().setup(cfg)
        remember_secrets(secret_values())
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                if not isinstance(handler.formatter, RedactingFormatter):
                    handler.setFormatter(RedactingFormatter(inner=handler.formatter))
