# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""What the customer portal (/my/email) may do with mailboxes, aliases and
API keys, as methods called on records browsed AS THE PORTAL USER: reading
them checks the portal record rules (their own tenant only; another
tenant's ids end in AccessError, and nothing changes), then the change is
made with the back office's own code (sudo), through the same sync seam."""

from odoo import models
from odoo.exceptions import UserError


class EmbouxMailbox(models.Model):
    _inherit = "emboux.mailbox"

    def portal_set_password(self, password):
        self.check_access("read")
        self.sudo().ensure_one()
        self.sudo().write({"password": password or ""})

    def portal_delete(self):
        self.check_access("read")
        self.sudo().unlink()

    def portal_set_catch_all(self, enabled):
        self.check_access("read")
        self.sudo().ensure_one()
        self.sudo().write({"catch_all": bool(enabled)})

    def portal_set_vacation(self, enabled, subject, body, start, end, days):
        """The out-of-office auto-reply, as the portal's form posts it (text:
        empty dates are none, empty days the default); checked by emboux_core
        (UserError, nothing saved) and sent through the sync queue."""
        self.check_access("read")
        self.sudo().ensure_one()
        days = (days or "").strip() if isinstance(days, str) else days
        self.sudo().write({"vacation_enabled": bool(enabled), "vacation_subject": subject or "",
                           "vacation_body": body or "", "vacation_start": start or False,
                           "vacation_end": end or False, "vacation_days": days or 7})


class EmbouxAlias(models.Model):
    _inherit = "emboux.alias"

    def portal_delete(self):
        self.check_access("read")
        if self.sudo().mailbox_id:
            raise UserError(self.env._("This is a mailbox's catch-all: untick it on the mailbox."))
        self.sudo().unlink()


class EmbouxApiKey(models.Model):
    _inherit = "emboux.api.key"

    def portal_revoke(self):
        """Revoked = deleted on the platform (DELETE by id, through the queue)."""
        self.check_access("read")
        self.sudo().unlink()
