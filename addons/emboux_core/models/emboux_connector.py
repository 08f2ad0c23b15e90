# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
import logging
import os

from odoo import api, models
from odoo.exceptions import UserError

from ..services.connector_client import ConnectorClient, ConnectorError, ConnectorRefused

_logger = logging.getLogger(__name__)


class EmbouxConnector(models.AbstractModel):
    """Where Odoo finds the connector. Every call goes through `_client()`,
    i.e. through services/connector_client.py (timeouts, error mapping)."""

    _name = "emboux.connector"
    _description = "EmBoux connector access"

    @api.model
    def _settings(self):
        icp = self.env["ir.config_parameter"].sudo()
        return {
            "url": icp.get_param("emboux.connector_url") or os.environ.get("EMBOUX_API_URL", ""),
            "token": icp.get_param("emboux.master_token") or os.environ.get("EMBOUX_API_KEY", ""),
            "connect_timeout": icp.get_param("emboux.connect_timeout") or 3,
            "read_timeout": icp.get_param("emboux.read_timeout") or 15,
        }

    @api.model
    def _client(self):
        s = self._settings()
        return ConnectorClient(s["url"], s["token"], s["connect_timeout"], s["read_timeout"])

    @api.model
    def _call_or_raise(self, method, path, payload=None, **kw):
        """A synchronous call whose failure the user must see (e.g. Test connection)."""
        try:
            return self._client().call(method, path, payload, **kw)
        except ConnectorError as exc:
            raise UserError(str(exc)) from exc

    @api.model
    def _exists(self, path):
        """True/False if the connector says so, None if it cannot be asked now."""
        try:
            self._client().call("GET", path)
            return True
        except ConnectorRefused as exc:
            if exc.status == 404:
                return False
            return None
        except ConnectorError:
            return None

    # --- platform crons (the connector does the work; Odoo keeps the clock) --
    @api.model
    def _platform_call(self, path, what):
        try:
            result = self._client().call("POST", path)
            _logger.info("EmBoux %s: %s", what, result)
            return result
        except ConnectorError as exc:
            _logger.warning("EmBoux %s failed: %s", what, exc)
            raise UserError(str(exc)) from None

    @api.model
    def _cron_outbound_reset_daily(self):
        return self._platform_call("/outbound/reset-daily", "daily outbound counter reset")

    @api.model
    def _cron_outbound_reset_monthly(self, max_months=12):
        """The connector freezes months in order, and by default the month
        after the last frozen one: after a missed run, call until it answers
        `already_done` (last month frozen), so the backlog is caught up now
        rather than one month late for ever."""
        result = None
        for _month in range(max_months):
            result = self._platform_call("/outbound/reset-monthly", "monthly outbound counter reset")
            if not isinstance(result, dict) or result.get("already_done"):
                break
        return result

    @api.model
    def _cron_retention_purge(self):
        return self._platform_call("/retention/purge", "retention purge")
