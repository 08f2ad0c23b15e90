# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo import api, fields, models
from odoo.exceptions import UserError

from ..services import names, usage


class EmbouxMailbox(models.Model):
    _name = "emboux.mailbox"
    _description = "Email Hosting mailbox"
    _inherit = ["mail.thread", "mail.activity.mixin", "emboux.sync.mixin"]
    _order = "email"
    _rec_name = "email"

    domain_id = fields.Many2one("emboux.domain", required=True, index=True, ondelete="cascade", tracking=True)
    tenant_id = fields.Many2one(related="domain_id.tenant_id", store=True, index=True, string="Tenant")
    company_id = fields.Many2one(related="domain_id.company_id", store=True, index=True)
    local_part = fields.Char("Name before @", required=True)
    email = fields.Char(compute="_compute_email", store=True, index=True, readonly=True)
    active = fields.Boolean(default=True, tracking=True,
                            help="Archived: disabled on the mail platform (logins and new mail refused, the "
                                 "mail it holds kept; unarchive to enable it again). A mailbox deleted on the "
                                 "platform by someone else is archived too.")
    # Write-only: accepted by create/write, sent to the connector (sealed in
    # the sync job until it is), never stored in a column of this table.
    password = fields.Char(compute="_compute_password", inverse="_inverse_password", store=False,
                           copy=False, help="Set a new password. It is sent to the mail platform and never "
                                            "kept in Odoo: leave empty to keep the current one.")
    quota_mb = fields.Integer("Storage quota (MB)", tracking=True,
                              default=lambda self: self._default_quota(), help="0 = unlimited")
    storage_used_mb = fields.Float("Storage used (MB)", readonly=True, digits=(12, 1))
    storage_usage = fields.Char("Storage", compute="_compute_storage_usage",
                                help="Storage used / quota (last read from the mail platform).")
    catch_all = fields.Boolean("Catch-all", tracking=True,
                               help="Also receive mail sent to any unknown address of the domain.")
    # client settings panel (read-only)
    imap_host = fields.Char(compute="_compute_client_settings")
    smtp_host = fields.Char(compute="_compute_client_settings")
    client_settings = fields.Html(compute="_compute_client_settings", sanitize=False)

    _email_unique = models.Constraint("UNIQUE (email)", "This email address is already a mailbox in Odoo.")
    _quota_positive = models.Constraint("CHECK (quota_mb >= 0)", "The storage quota cannot be negative.")

    @api.model
    def _default_quota(self):
        dom = self.env["emboux.domain"].browse(self.env.context.get("default_domain_id"))
        return dom.tenant_id.default_quota_mb if dom.exists() else 1024

    @api.depends("local_part", "domain_id.name")
    def _compute_email(self):
        for box in self:
            box.email = f"{box.local_part}@{box.domain_id.name}" if box.local_part and box.domain_id else False

    def _compute_password(self):
        for box in self:
            box.password = False

    def _inverse_password(self):
        """Handled in create/write: the value never reaches the database."""

    @api.depends("storage_used_mb", "quota_mb")
    def _compute_storage_usage(self):
        unlimited = self.env._("Unlimited")
        for box in self:
            box.storage_usage = usage.used_of(box.storage_used_mb, box.quota_mb, unlimited, unit="MB")

    def copy_data(self, default=None):
        # Duplicate would only fail later on the unique name: say why at once
        raise UserError(self.env._("A mailbox cannot be duplicated: create a new one (an address is unique)."))

    def _compute_client_settings(self):
        icp = self.env["ir.config_parameter"].sudo()
        imap = icp.get_param("emboux.imap_host", "mail.emboux.test")
        smtp = icp.get_param("emboux.smtp_host", imap)
        for box in self:
            box.imap_host, box.smtp_host = imap, smtp
            # (not named `user`: Odoo's module-level `_()` reads a local of that
            # name as a user id, which crashed XML-RPC reads without `lang`)
            login = box.email or self.env._("the full email address")
            box.client_settings = self.env._(
                "<table class='table table-sm'>"
                "<tr><th>Incoming (IMAP)</th><td>%(imap)s, port 993, SSL/TLS</td></tr>"
                "<tr><th>Outgoing (SMTP)</th><td>%(smtp)s, port 465, SSL/TLS (recommended)<br/>"
                "or port 587, STARTTLS</td></tr>"
                "<tr><th>User name</th><td>%(login)s</td></tr>"
                "<tr><th>Password</th><td>the mailbox password (not kept in Odoo)</td></tr></table>",
                imap=imap, smtp=smtp, login=login)

    def _emboux_lane(self):
        return f"partner:{self.domain_id.tenant_id.partner_ref}"

    def _emboux_target(self):
        return {"email": self.email}

    def _q(self):
        return self.env["emboux.connector"]._client().q(self.email)

    @api.model_create_multi
    def create(self, vals_list):
        sync = self._emboux_sync_enabled()
        passwords = []
        Domain = self.env["emboux.domain"]
        for vals in vals_list:
            vals["local_part"] = self._emboux_check(names.local_part, vals.get("local_part"))
            if "quota_mb" not in vals and vals.get("domain_id"):
                vals["quota_mb"] = Domain.browse(vals["domain_id"]).tenant_id.default_quota_mb
            pw = vals.pop("password", False)
            if sync:
                if not pw:
                    raise UserError(self.env._("A password is required to create the mailbox %s.", vals["local_part"]))
                self._emboux_check(names.check_password, pw)
            passwords.append(pw)
        if sync:
            self._emboux_preflight(vals_list)
        boxes = super().create(vals_list)
        if not sync:
            boxes.with_context(emboux_no_sync=True).write({"sync_state": "synced"})
            return boxes
        for box, pw in zip(boxes, passwords):
            box._emboux_sync("mailbox.create", secret=pw, domain_name=box.domain_id.name, email=box.email,
                             quota_mb=box.quota_mb)
            if not box.active:
                box._emboux_enqueue_active()
        catch_all = boxes.filtered("catch_all")
        if catch_all:
            catch_all._emboux_install_catch_all()
        return boxes

    def _emboux_preflight(self, vals_list):
        Domain = self.env["emboux.domain"]
        per_domain = {}
        for vals in vals_list:
            dom = Domain.browse(vals.get("domain_id"))
            if not dom.exists():
                raise UserError(self.env._("Choose the domain of the mailbox."))
            email = f"{vals['local_part']}@{dom.name}"
            per_domain.setdefault(dom, []).append(email)
        client = self.env["emboux.connector"]._client()
        for dom, emails in per_domain.items():
            if len(set(emails)) != len(emails):
                raise UserError(self.env._("The same address appears twice in this change."))
            existing = self.with_context(active_test=False).search([("email", "in", emails)], limit=1)
            if existing:
                raise UserError(self.env._("%s is already a mailbox.", existing.email))
            taken = self.env["emboux.alias"].search([("source", "in", emails)], limit=1)
            if taken:
                raise UserError(self.env._("%s is already an alias: delete the alias first.", taken.source))
            tenant = dom.tenant_id.sudo()
            used = self.with_context(active_test=False).search_count([("domain_id", "=", dom.id)])
            if tenant.mailboxes_per_domain and used + len(emails) > tenant.mailboxes_per_domain:
                raise UserError(self.env._("%(domain)s may have %(allowed)s mailbox(es) and already has %(used)s: "
                                  "raise the quota of %(tenant)s first.", domain=dom.name,
                                  allowed=tenant.mailboxes_per_domain, used=used, tenant=tenant.name))
            # addresses taken, or quota used, on the platform by someone else
            # (the tenant's own API keys, another ERP) and not pulled yet
            if dom.remote_id:
                try:
                    boxes = {u["email"] for u in client.call("GET", "/users/", params={"domain_id": dom.remote_id})}
                    remote = boxes | {a["source"] for a in
                                      client.call("GET", "/aliases/", params={"domain_id": dom.remote_id})}
                except Exception:  # unreachable now: the queue will tell later
                    boxes, remote = set(), set()
                clash = sorted(remote & set(emails))
                if clash:
                    raise UserError(self.env._("%s already exists on the mail platform (created outside this Odoo).",
                                      clash[0]))
                if tenant.mailboxes_per_domain and len(boxes) + len(emails) > tenant.mailboxes_per_domain:
                    raise UserError(self.env._("%(domain)s may have %(allowed)s mailbox(es) and already has %(used)s on "
                                      "the mail platform: raise the quota of %(tenant)s first.", domain=dom.name,
                                      allowed=tenant.mailboxes_per_domain, used=len(boxes), tenant=tenant.name))

    def write(self, vals):
        sync = self._emboux_sync_enabled()
        vals = dict(vals)
        pw = vals.pop("password", False)
        if "local_part" in vals or "domain_id" in vals:
            for box in self:
                lp = self._emboux_check(names.local_part, vals.get("local_part", box.local_part))
                if lp != box.local_part or vals.get("domain_id", box.domain_id.id) != box.domain_id.id:
                    raise UserError(self.env._("An address cannot be renamed: create a new mailbox, then delete %s.",
                                      box.email))
            vals.pop("local_part", None)
            vals.pop("domain_id", None)
        if pw and sync:
            self._emboux_check(names.check_password, pw)
        old_catch_all = {b.id: b.catch_all for b in self}
        old_active = {b.id: b.active for b in self}
        res = super().write(vals) if vals else True
        if not sync:
            return res
        for box in self:
            if pw:
                box._emboux_sync("mailbox.password", secret=pw)
                box.message_post(body=self.env._("Password changed."))
            if "quota_mb" in vals:
                box._emboux_sync("mailbox.quota", quota_mb=box.quota_mb)
            if box.active != old_active[box.id]:
                box._emboux_enqueue_active()
        if "catch_all" in vals:
            turned_on = self.filtered(lambda b: b.catch_all and not old_catch_all[b.id])
            turned_off = self.filtered(lambda b: not b.catch_all and old_catch_all[b.id])
            turned_on._emboux_install_catch_all()
            turned_off._emboux_remove_catch_all()
        return res

    def _emboux_enqueue_active(self):
        """Archive = disable on the platform (logins refused, new mail refused
        with 550 5.2.1, stored mail kept); unarchive = enable again."""
        self._emboux_sync("mailbox.active", active=self.active)

    def _emboux_install_catch_all(self):
        Alias = self.env["emboux.alias"]
        for box in self:
            source = f"@{box.domain_id.name}"
            # one catch-all per domain: moving it un-ticks the previous mailbox
            others = self.search([("domain_id", "=", box.domain_id.id), ("catch_all", "=", True),
                                  ("id", "!=", box.id)])
            if others:
                others.with_context(emboux_no_sync=True).write({"catch_all": False})
            alias = Alias.search([("source", "=", source)], limit=1)
            if alias:
                alias.write({"destinations": box.email, "mailbox_id": box.id})
            else:
                Alias.create({"domain_id": box.domain_id.id, "source": source, "destinations": box.email,
                              "mailbox_id": box.id})

    def _emboux_remove_catch_all(self):
        Alias = self.env["emboux.alias"]
        for box in self:
            Alias.search([("source", "=", f"@{box.domain_id.name}"), ("mailbox_id", "=", box.id)]).unlink()

    def unlink(self):
        if self._emboux_sync_enabled():
            for box in self:
                box._emboux_sync("mailbox.delete")
        # the connector drops aliases forwarding to the mailbox; so do we (no echo)
        aliases = self.env["emboux.alias"].search([("mailbox_id", "in", self.ids)])
        aliases.with_context(emboux_no_sync=True).unlink()
        return super().unlink()

    def action_refresh_usage(self):
        client = self.env["emboux.connector"]._client()
        for box in self:
            try:
                data = client.call("GET", f"/users/{box._q()}/quota")
            except Exception as exc:
                raise UserError(self.env._("The storage in use cannot be read now: %s", exc)) from None
            used = (data or {}).get("storage_used_mb")
            box.with_context(emboux_no_sync=True).write({"storage_used_mb": used or 0.0})
        return True
