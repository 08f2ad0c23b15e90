# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A month is invoiced once, from the connector's frozen counters, and only
once it is frozen.

The calendar cannot be wound forward on the shared stack (a month is frozen
for the whole platform by reset-monthly once it is over), so the test counts
real messages on its domain (`POST .../outbound/increment`, the policy
daemon's own code), then freezes that domain's counters into the last month
the platform already closed, with reset-monthly's own INSERT restricted to
the test's domain, and removes the row afterwards."""

import math
import os
import subprocess
from datetime import date

import psycopg2

from .common import MAILDB_DSN, SaasCase, api, maildb


def maildb_write(sql, params=()):
    conn = psycopg2.connect(MAILDB_DSN)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.rowcount
    finally:
        conn.close()


def last_frozen_month():
    rows = maildb("SELECT max(period) FROM outbound_resets WHERE kind = 'monthly' "
                  "AND period < date_trunc('month', now())::date")
    return rows[0][0]


def doveadm(*args, stdin=None):
    return subprocess.run(["doveadm", "-c", os.environ["DOVECOT_CONFIG"], *args], input=stdin, text=True,
                          capture_output=True, timeout=60, check=True).stdout


def stored_bytes(email):
    """What Dovecot accounts for the mailbox (its quota), as reset-monthly measures it."""
    rows = [ln.split("\t") for ln in doveadm("-f", "tab", "quota", "get", "-u", email).splitlines()[1:]]
    return next(int(r[2]) for r in rows if r[1] == "STORAGE") * 1024


def freeze_domain_counters(domain_name, month, storage_bytes):
    """What POST /outbound/reset-monthly writes, for one domain (storage: what it measured)."""
    n = maildb_write("INSERT INTO outbound_billing (domain_id, domain_name, partner_ref, month, sent, bytes, overage, "
           " overage_bytes, bounce_count, complaint_count, monthly_limit, enforcement, mailboxes, storage_bytes) "
           "SELECT d.id, d.name, d.partner_ref, %s, c.sent_month, c.bytes_month, c.overage_month, "
           " c.overage_bytes_month, c.bounce_count, c.complaint_count, d.outbound_monthly_limit, "
           " d.outbound_enforcement, (SELECT count(*) FROM mailboxes m WHERE m.domain_id = d.id), %s "
           "FROM outbound_counters c JOIN domains d ON d.id = c.domain_id "
           "WHERE d.name = %s", (month, storage_bytes, domain_name))
    assert n == 1, n


def unfreeze(domain_name):
    maildb_write("DELETE FROM outbound_billing WHERE domain_name = %s", (domain_name,))


class TestBilling(SaasCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Product = cls.env["product.product"]
        cls.fee = Product.create({"name": "Mail plan fee", "type": "service", "lst_price": 20.0})
        cls.per_box = Product.create({"name": "Mailbox", "type": "service", "lst_price": 2.0})
        cls.per_gb = Product.create({"name": "Storage GB", "type": "service", "lst_price": 0.5})
        cls.per_k = Product.create({"name": "1,000 messages", "type": "service", "lst_price": 1.5})
        cls.plan = cls.env["emboux.plan"].create({
            "name": "Metered", "domains_allowed": 5, "mailboxes_per_domain": 10, "storage_mb": 2048,
            "outbound_daily_limit": 0, "outbound_monthly_limit": 0, "outbound_enforcement": "soft",
            "warmup_profile": False, "included_messages": 1000,
            "fee_product_id": cls.fee.id, "mailbox_product_id": cls.per_box.id,
            "storage_product_id": cls.per_gb.id, "overage_product_id": cls.per_k.id})

    def test_month_billed_once_with_the_right_quantities(self):
        month = last_frozen_month()
        self.assertTrue(month, "the platform has closed no month yet")
        tenant = self.new_tenant().with_context(emboux_contract_date_start=month)
        tenant.plan_id = self.plan
        contract = tenant.contract_id
        self.assertTrue(contract)
        self.assertEqual(set(contract.contract_line_ids.mapped("emboux_usage")),
                         {"fee", "mailbox", "storage", "overage"})
        dom = self.new_domain(tenant)
        self.flush_queue()
        api("PUT", f"/domains/{dom.name}/ownership/vouch", json={"vouched_by": "test"})
        for local in ("a", "b", "c"):
            self.env["emboux.mailbox"].create({"domain_id": dom.id, "local_part": local,
                                               "password": "correct horse 12"})
        self.flush_queue()
        # 2,600 messages counted by the platform: 1,600 above the 1,000 included -> 2 started thousands
        for count in (2000, 600):
            r = api("POST", f"/domains/{dom.name}/outbound/increment", json={"count": count})
            self.assertEqual(r.status_code, 200, r.text)
            self.assertTrue(r.json()["allowed"], r.text)
        # mail stored in one mailbox: the platform measures it at the freeze
        doveadm("save", "-u", f"a@{dom.name}", stdin="Subject: kept\n\n" + "x" * 50000 + "\n")
        stored = sum(stored_bytes(f"{x}@{dom.name}") for x in "abc")
        self.assertGreater(stored, 50000)
        self.addCleanup(unfreeze, dom.name)
        freeze_domain_counters(dom.name, month, stored)
        # a mailbox created after the month closed is not billed for it
        self.env["emboux.mailbox"].create({"domain_id": dom.id, "local_part": "late", "password": "correct horse 12"})
        self.flush_queue()

        today = date.today()
        self.env["contract.contract"]._cron_recurring_create(date_ref=today)
        invoices = self.env["account.move"].search([("emboux_tenant_id", "=", tenant.id)])
        self.assertEqual(len(invoices), 1, contract.invoice_generation_error)
        inv = invoices
        self.assertEqual(inv.state, "posted")
        self.assertEqual(inv.emboux_billing_month, month.strftime("%Y-%m"))
        qty = {line.product_id: line.quantity for line in inv.invoice_line_ids}
        gb = math.ceil(stored * 100 / 1024 ** 3) / 100.0    # measured bytes, in started hundredths of a GB
        self.assertEqual(qty, {self.fee: 1.0, self.per_box: 3.0, self.per_gb: gb, self.per_k: 2.0})
        self.assertIn(dom.name, str(inv.narration))
        self.assertIn("2600", str(inv.narration))
        self.assertAlmostEqual(inv.amount_untaxed, 20 + 3 * 2 + gb * 0.5 + 2 * 1.5, delta=0.01)  # (cents)
        # its origin in its chatter, once (logged in one batch for the run, not Odoo's own "created")
        origin = inv.message_ids.filtered(lambda m: "by contract" in str(m.body))
        self.assertEqual(len(origin), 1, inv.message_ids.mapped("body"))
        self.assertRegex(str(origin.body), rf"""data-oe-model=["']contract.contract["'] data-oe-id=["']{contract.id}["']""")

        # again: nothing new, even with the contract's dates moved back by hand
        self.env["contract.contract"]._cron_recurring_create(date_ref=today)
        due = date(month.year + month.month // 12, month.month % 12 + 1, 1)  # post-paid: the 1st after
        contract.contract_line_ids.write({"last_date_invoiced": False, "recurring_next_date": due})
        self.assertEqual(contract._emboux_month_to_invoice(), month.strftime("%Y-%m"))
        contract.recurring_create_invoice()
        self.assertEqual(self.env["account.move"].search_count([("emboux_tenant_id", "=", tenant.id)]), 1)

    def test_unfrozen_month_not_billed(self):
        today = date.today()
        tenant = self.new_tenant(self.plan)   # contract from this month, which is not over
        self.new_domain(tenant)
        self.flush_queue()
        current = today.strftime("%Y-%m")
        self.assertFalse(api("GET", f"/outbound/billing?month={current}").json()["frozen"])
        far = date(today.year + 1, today.month, 1)  # the contract is due, the month is not frozen
        self.env["contract.contract"]._cron_recurring_create(date_ref=far)
        self.assertFalse(self.env["account.move"].search([("emboux_tenant_id", "=", tenant.id)]))
        self.assertEqual(tenant.contract_id._emboux_month_to_invoice(), current)
