# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""What the customer portal (/my/email) may do, as model methods called on
records browsed AS THE PORTAL USER: reading them checks the portal record
rules (their own tenant only; another tenant's ids end in AccessError, and
nothing changes), then the change is made with the back office's own code
(sudo), so it travels through the same sync seam."""

from odoo import models
from odoo.exceptions import UserError

from odoo.addons.emboux_core.services.connector_client import ConnectorError


class EmbouxTenant(models.Model):
    _inherit = "emboux.tenant"

    def _portal_check(self):
        self.check_access("read")
        return self.sudo()

    def portal_add_domain(self, name):
        tenant = self._portal_check()
        tenant.ensure_one()
        if tenant.billing_state == "suspended":
            raise UserError(self.env._("Your account is suspended: no domain can be added now."))
        # emboux_core asks the platform for a DNS proof of ownership: the domain
        # receives nothing until the customer publishes the TXT record shown.
        return self.env["emboux.domain"].sudo().create({"name": (name or "").strip(), "tenant_id": tenant.id})

    def _portal_month_usage(self):
        """Per domain: this month's messages and the limit (from the platform);
        {} when the platform cannot be asked now."""
        self.ensure_one()
        client = self.env["emboux.connector"].sudo()._client()
        usage = {}
        for dom in self.sudo().domain_ids:
            try:
                out = client.call("GET", f"/domains/{client.q(dom.name)}/outbound")
            except ConnectorError:
                continue
            usage[dom.id] = {"sent": out.get("outbound_sent_month", 0),
                             "limit": out.get("outbound_monthly_limit", 0)}
        return usage


class EmbouxDomain(models.Model):
    _inherit = "emboux.domain"

    def portal_create_mailbox(self, local_part, password):
        self.check_access("read")
        dom = self.sudo()
        dom.ensure_one()
        # the quota (the plan's mailboxes per domain) is emboux_core's own check
        return self.env["emboux.mailbox"].sudo().create(
            {"domain_id": dom.id, "local_part": (local_part or "").strip(), "password": password or ""})

    def portal_check_ownership(self):
        self.check_access("read")
        return self.sudo().action_check_ownership()


class EmbouxMailbox(models.Model):
    _inherit = "emboux.mailbox"

    def portal_set_password(self, password):
        self.check_access("read")
        self.sudo().ensure_one()
        self.sudo().write({"password": password or ""})

    def portal_delete(self):
        self.check_access("read")
        self.sudo().unlink()


class EmbouxApiKey(models.Model):
    _inherit = "emboux.api.key"

    def portal_revoke(self):
        """Revoked = deleted on the platform (DELETE by id, through the queue)."""
        self.check_access("read")
        self.sudo().unlink()


class EmbouxTenantApiKeys(models.Model):
    _inherit = "emboux.tenant"

    def portal_create_api_key(self, name):
        """{'id', 'token'}: the token is shown once, then only its hash is kept."""
        tenant = self._portal_check()
        tenant.ensure_one()
        if tenant.billing_state == "suspended":
            raise UserError(self.env._("Your account is suspended: no API key can be created now."))
        name = (name or "").strip()
        if not name:
            raise UserError(self.env._("Give the API key a label (what uses it)."))
        return self.env["emboux.api.key"].sudo().create_with_token({"tenant_id": tenant.id, "name": name[:64]})


class EmbouxDomainAliases(models.Model):
    _inherit = "emboux.domain"

    def portal_create_alias(self, source, destinations):
        self.check_access("read")
        dom = self.sudo()
        dom.ensure_one()
        return self.env["emboux.alias"].sudo().create(
            {"domain_id": dom.id, "source": source or "", "destinations": destinations or ""})


class EmbouxAlias(models.Model):
    _inherit = "emboux.alias"

    def portal_delete(self):
        self.check_access("read")
        if self.sudo().mailbox_id:
            raise UserError(self.env._("This is a mailbox's catch-all: untick it on the mailbox."))
        self.sudo().unlink()


class EmbouxMailboxCatchAll(models.Model):
    _inherit = "emboux.mailbox"

    def portal_set_catch_all(self, enabled):
        self.check_access("read")
        self.sudo().ensure_one()
        self.sudo().write({"catch_all": bool(enabled)})
