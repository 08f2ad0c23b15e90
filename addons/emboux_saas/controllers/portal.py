# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""/my/email: the customer's email hosting in Odoo's portal. Every record is
read as the portal user (record rules: their tenant only); changes go
through the models' portal_* methods (models/emboux_portal.py)."""

from werkzeug.exceptions import NotFound

from odoo import http
from odoo.exceptions import AccessError, MissingError, UserError, ValidationError
from odoo.http import request

from odoo.addons.portal.controllers.portal import CustomerPortal

# What a portal_* method raises for a change it refuses (AccessError and
# MissingError: another customer's record or none; the others: bad input).
REFUSED = (AccessError, MissingError, UserError, ValidationError)


def refusal_text(exc):
    """What the customer reads of a refused change."""
    if isinstance(exc, (AccessError, MissingError)):
        return request.env._("This is not one of your records.")
    return str(exc.args[0] if exc.args else exc)


class EmbouxPortal(CustomerPortal):

    def _prepare_home_portal_values(self, counters):
        values = super()._prepare_home_portal_values(counters)
        if "emboux_domain_count" in counters:
            Domain = request.env["emboux.domain"]
            values["emboux_domain_count"] = Domain.search_count([]) if Domain.has_access("read") else 0
        return values

    def _emboux_tenants(self):
        Tenant = request.env["emboux.tenant"]
        return Tenant.search([]) if Tenant.has_access("read") else Tenant

    @http.route("/my/email", type="http", auth="user", website=True)
    def portal_my_email(self, **kw):
        return self._emboux_render(message=kw.get("message"), error=kw.get("error"))

    def _emboux_render(self, message=None, error=None, new_token=None):
        tenants = self._emboux_tenants()
        usage, summary, dns = {}, {}, {}
        for tenant in tenants:
            month = tenant._portal_month_usage()
            usage.update(month)
            summary[tenant.id] = tenant._portal_usage_summary(month)
            dns.update(tenant._portal_dns_checks())
        values = self._prepare_portal_layout_values()
        values.update({
            "page_name": "emboux_email", "tenants": tenants, "usage": usage, "summary": summary, "dns": dns,
            "message": message, "error": error, "new_token": new_token,
        })
        return request.render("emboux_saas.portal_my_email", values)

    def _emboux_redirect(self, message=None, error=None):
        from werkzeug.urls import url_encode
        query = {k: v for k, v in (("message", message), ("error", error)) if v}
        return request.redirect("/my/email" + ("?" + url_encode(query) if query else ""))

    def _emboux_do(self, fn, done):
        try:
            fn()
        except REFUSED as exc:
            return self._emboux_redirect(error=refusal_text(exc))
        return self._emboux_redirect(message=done)

    @staticmethod
    def _int(value):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise NotFound() from None

    @http.route("/my/email/domain/add", type="http", auth="user", methods=["POST"], website=True)
    def portal_email_domain_add(self, tenant_id=None, name=None, **kw):
        tenant = request.env["emboux.tenant"].browse(self._int(tenant_id))
        return self._emboux_do(lambda: tenant.portal_add_domain(name),
                               request.env._("Domain added: publish the TXT record shown to prove you own it."))

    @http.route("/my/email/domain/<int:domain_id>/check", type="http", auth="user", methods=["POST"],
                website=True)
    def portal_email_domain_check(self, domain_id, **kw):
        dom = request.env["emboux.domain"].browse(domain_id)
        return self._emboux_do(lambda: dom.portal_check_ownership(), request.env._("Ownership checked."))

    @http.route("/my/email/mailbox/create", type="http", auth="user", methods=["POST"], website=True)
    def portal_email_mailbox_create(self, domain_id=None, local_part=None, password=None, **kw):
        dom = request.env["emboux.domain"].browse(self._int(domain_id))
        return self._emboux_do(lambda: dom.portal_create_mailbox(local_part, password),
                               request.env._("Mailbox created."))

    @http.route("/my/email/mailbox/<int:mailbox_id>/password", type="http", auth="user", methods=["POST"],
                website=True)
    def portal_email_mailbox_password(self, mailbox_id, password=None, **kw):
        box = request.env["emboux.mailbox"].browse(mailbox_id)
        return self._emboux_do(lambda: box.portal_set_password(password), request.env._("Password changed."))

    @http.route("/my/email/mailbox/<int:mailbox_id>/delete", type="http", auth="user", methods=["POST"],
                website=True)
    def portal_email_mailbox_delete(self, mailbox_id, **kw):
        box = request.env["emboux.mailbox"].browse(mailbox_id)
        return self._emboux_do(lambda: box.portal_delete(), request.env._("Mailbox deleted with its mail."))

    @http.route("/my/email/api-key/create", type="http", auth="user", methods=["POST"], website=True)
    def portal_email_api_key_create(self, tenant_id=None, name=None, **kw):
        """The token is in this answer's page only (never in a URL, never stored)."""
        tenant = request.env["emboux.tenant"].browse(self._int(tenant_id))
        try:
            key = tenant.portal_create_api_key(name)
        except REFUSED as exc:
            return self._emboux_redirect(error=refusal_text(exc))
        response = self._emboux_render(new_token=key["token"])
        response.headers["Cache-Control"] = "no-store"
        return response

    @http.route("/my/email/api-key/<int:key_id>/revoke", type="http", auth="user", methods=["POST"],
                website=True)
    def portal_email_api_key_revoke(self, key_id, **kw):
        key = request.env["emboux.api.key"].browse(key_id)
        return self._emboux_do(lambda: key.portal_revoke(), request.env._("API key revoked."))

    @http.route("/my/email/alias/create", type="http", auth="user", methods=["POST"], website=True)
    def portal_email_alias_create(self, domain_id=None, source=None, destinations=None, **kw):
        dom = request.env["emboux.domain"].browse(self._int(domain_id))
        return self._emboux_do(lambda: dom.portal_create_alias(source, destinations), request.env._("Alias created."))

    @http.route("/my/email/alias/<int:alias_id>/delete", type="http", auth="user", methods=["POST"], website=True)
    def portal_email_alias_delete(self, alias_id, **kw):
        alias = request.env["emboux.alias"].browse(alias_id)
        return self._emboux_do(lambda: alias.portal_delete(), request.env._("Alias deleted."))

    @http.route("/my/email/mailbox/<int:mailbox_id>/catch-all", type="http", auth="user", methods=["POST"],
                website=True)
    def portal_email_mailbox_catch_all(self, mailbox_id, enabled=None, **kw):
        box = request.env["emboux.mailbox"].browse(mailbox_id)
        return self._emboux_do(lambda: box.portal_set_catch_all(enabled == "1"),
                               request.env._("Catch-all changed."))

    @http.route("/my/email/mailbox/<int:mailbox_id>/vacation", type="http", auth="user",
                methods=["GET", "POST"], website=True)
    def portal_email_mailbox_vacation(self, mailbox_id, **post):
        """The out-of-office auto-reply of one mailbox: the form (GET), saved
        by POST. A refused value shows the form again with what was typed and
        the reason; another customer's mailbox is refused before anything."""
        box = request.env["emboux.mailbox"].browse(mailbox_id)
        try:
            if not box.exists():
                raise MissingError(request.env._("This mailbox does not exist."))
            box.check_access("read")
        except (AccessError, MissingError) as exc:
            return self._emboux_redirect(error=refusal_text(exc))
        error = None
        if request.httprequest.method == "POST":
            try:
                box.portal_set_vacation(post.get("enabled") == "1", post.get("subject"), post.get("body"),
                                        post.get("start"), post.get("end"), post.get("days"))
            except (AccessError, MissingError) as exc:
                return self._emboux_redirect(error=refusal_text(exc))
            except (UserError, ValidationError) as exc:
                error = refusal_text(exc)
            else:
                return request.redirect(f"/my/email/mailbox/{box.id}/vacation?saved=1")
        if error:   # what was typed, to correct it
            form = {k: post.get(k) or "" for k in ("subject", "body", "start", "end", "days")}
            form["enabled"] = post.get("enabled") == "1"
        else:
            form = {"enabled": box.vacation_enabled, "subject": box.vacation_subject or "",
                    "body": box.vacation_body or "", "start": box.vacation_start or "",
                    "end": box.vacation_end or "", "days": box.vacation_days}
        values = self._prepare_portal_layout_values()
        values.update({"page_name": "emboux_vacation", "box": box, "form": form, "error": error,
                       "saved": not error and post.get("saved") == "1"})
        return request.render("emboux_saas.portal_my_email_vacation", values)
