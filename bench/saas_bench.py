# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Benchmark (not a test) of emboux_saas: run with Odoo's virtualenv against
the dev stack's Odoo database and connector, e.g.
    $(ls -d ~/.cache/emboux/odoo19-venv-*)/bin/python bench/saas_bench.py [tenants] [domains]

1. The non-payment / over-plan lifecycle cron over 1,000 tenants on a plan
   with nothing to do (no overdue invoice, within the plan). Target: <= 5 s.
2. The monthly billing run for those 1,000 tenants with 10 domains each, end
   to end: the contracts' cron asks the connector for the month's frozen
   counters (`GET /outbound/billing?month=`, 10,000 entries of this run),
   computes the usage lines, creates and posts 1,000 invoices. Target: <= 60 s.

Everything runs in one Odoo transaction that is rolled back at the end
(tenants and domains are created in Odoo only, `emboux_no_sync`); the
10,000 frozen counter rows are written in the mail DB for the last month
the platform closed, under names of this run, and deleted at the end."""

import os
import pathlib
import signal
import sys
import time
import uuid
from datetime import date

import psycopg2

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests_odoo"))
from conftest import ENV  # noqa: E402

import odoo  # noqa: E402  (Odoo's virtualenv)
from odoo.tools import config  # noqa: E402


def maildb(sql, params=(), fetch=False):
    conn = psycopg2.connect(ENV["MAILDB_DSN"])
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if fetch else cur.rowcount
    finally:
        conn.close()


def timed(label, fn):
    """Wall time, with Odoo's own CPU time and the machine's load beside it
    (the 2-core dev box is shared: a loaded run is said to be one)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"{label}: {dt:.2f} s (Odoo CPU {cpu:.2f} s, load average {os.getloadavg()[0]:.1f})", flush=True)
    return out, dt


def main():
    # stopped (timeout, kill): still remove the counter rows written in the mail DB
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    tenants_n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    domains_n = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    run = uuid.uuid4().hex[:6]
    month = maildb("SELECT max(period) FROM outbound_resets WHERE kind = 'monthly' "
                   "AND period < date_trunc('month', now())::date", fetch=True)[0][0]
    assert month, "the platform has closed no month yet (POST /outbound/reset-monthly)"
    os.environ.setdefault("EMBOUX_API_URL", ENV["EMBOUX_API_URL"])
    config.parse_config(["-c", str(ROOT / "var" / "odoo" / "odoo.conf"), "-d", ENV["ODOO_DB"]])
    registry = odoo.modules.registry.Registry(ENV["ODOO_DB"])
    names = []
    try:
        with registry.cursor() as cr:
            env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {"emboux_no_sync": True, "tracking_disable": True,
                                                               "mail_create_nolog": True})
            Product = env["product.product"]
            plan = env["emboux.plan"].create({
                "name": f"Bench {run}", "domains_allowed": domains_n, "mailboxes_per_domain": 0,
                "outbound_enforcement": "soft", "included_messages": 1000,
                "fee_product_id": Product.create({"name": "Bench fee", "type": "service", "lst_price": 20}).id,
                "mailbox_product_id": Product.create({"name": "Bench box", "type": "service", "lst_price": 2}).id,
                "storage_product_id": Product.create({"name": "Bench GB", "type": "service", "lst_price": 1}).id,
                "overage_product_id": Product.create({"name": "Bench 1k", "type": "service", "lst_price": 1}).id})
            t0 = time.perf_counter()
            partners = env["res.partner"].create([{"name": f"Bench {run} {i}", "is_company": True}
                                                  for i in range(tenants_n)])
            tenants = env["emboux.tenant"].with_context(emboux_contract_date_start=month).create([
                {"name": p.name, "partner_id": p.id, "partner_ref": f"bench-{run}-{i}", "plan_id": plan.id}
                for i, p in enumerate(partners)])
            domains = env["emboux.domain"].create([
                {"name": f"d{j}.t{i}.bench-{run}.test", "tenant_id": t.id}
                for i, t in enumerate(tenants) for j in range(domains_n)])
            env["emboux.mailbox"].create([{"domain_id": d.id, "local_part": "info", "password": "bench horse 12"}
                                          for d in domains[::domains_n]])
            env.flush_all()
            print(f"setup: {tenants_n} tenants, {len(domains)} domains in {time.perf_counter() - t0:.1f} s "
                  f"(Odoo only), month {month:%Y-%m}", flush=True)
            # the month's frozen counters, as reset-monthly writes them
            rows = [(f"d{j}.t{i}.bench-{run}.test", f"bench-{run}-{i}", month, 150 * (j + 1), 0, 0, 0, 0, 0, 0,
                     "soft", 0 if j else 1, 0 if j else 300 * 1024 ** 2)
                    for i in range(tenants_n) for j in range(domains_n)]
            names = [r[0] for r in rows]
            conn = psycopg2.connect(ENV["MAILDB_DSN"])
            with conn, conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO outbound_billing (domain_name, partner_ref, month, sent, bytes, overage, "
                    "overage_bytes, bounce_count, complaint_count, monthly_limit, enforcement, mailboxes, "
                    "storage_bytes) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)
            conn.close()

            # A database with accounting history, as any platform that bills monthly has: the dev
            # database has none (journal tables empty, never analyzed), and with those statistics
            # PostgreSQL plans Odoo's payment-state queries as nested loops over every invoice line
            # for every line -- quadratic in the run's own invoices. 300 earlier invoices, analyzed.
            t0 = time.perf_counter()
            env["account.move"].create([{
                "move_type": "out_invoice", "partner_id": p.id, "invoice_date": month,
                "invoice_line_ids": [(0, 0, {"name": f"history {n}", "quantity": 1, "price_unit": 10.0})
                                     for n in range(4)]} for p in partners[:300]])
            env.flush_all()
            cr.execute("ANALYZE account_move, account_move_line, account_partial_reconcile, account_payment")
            print(f"history: 300 earlier invoices, analyzed, in {time.perf_counter() - t0:.1f} s", flush=True)
            env = env(context={})  # the crons run as they do in production
            billing, _ = timed("the month's frozen counters from the connector (GET /outbound/billing?month=)",
                               lambda: env["emboux.tenant"]._emboux_fetch_billing(f"{month:%Y-%m}"))
            assert billing["frozen"], "the connector did not answer, or the month is not frozen"
            print(f"  {len(billing['entries'])} entries in the month", flush=True)
            _, life = timed(f"lifecycle cron, {tenants_n} tenants with nothing to do",
                            lambda: env["emboux.tenant"]._cron_emboux_billing_lifecycle())
            assert set(tenants.mapped("billing_state")) == {"active"}
            def bill_month():
                env["contract.contract"]._cron_recurring_create(date_ref=date.today())
                env.flush_all()
            if os.environ.get("BENCH_PROFILE"):
                import cProfile
                import pstats
                prof = cProfile.Profile()
                _, bill = timed("monthly billing (profiled)", lambda: prof.runcall(bill_month))
                pstats.Stats(prof).sort_stats("cumulative").print_stats(45)
                if os.environ["BENCH_PROFILE"].endswith(".prof"):  # for a closer look (pstats, snakeviz)
                    prof.dump_stats(os.environ["BENCH_PROFILE"])
            else:
                _, bill = timed(f"monthly billing, {tenants_n} tenants x {domains_n} domains", bill_month)
            moves = env["account.move"].search([("emboux_tenant_id", "in", tenants.ids)])
            assert len(moves) == tenants_n and set(moves.mapped("state")) == {"posted"}, len(moves)
            sample = moves[0]
            print("sample invoice:", {ln.product_id.name: ln.quantity for ln in sample.invoice_line_ids})
            _, again = timed("billing again (idempotent: nothing new)",
                             lambda: env["contract.contract"]._cron_recurring_create(date_ref=date.today()))
            assert env["account.move"].search_count([("emboux_tenant_id", "in", tenants.ids)]) == tenants_n
            print(f"RESULT lifecycle={life:.2f}s (target 5) billing={bill:.2f}s (target 60)")
            cr.rollback()
    finally:
        if names:
            maildb("DELETE FROM outbound_billing WHERE domain_name = ANY(%s)", (names,))


if __name__ == "__main__":
    main()
