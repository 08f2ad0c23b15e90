# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
{
    "name": "EmBoux Email Hosting",
    "summary": "Tenants, domains, mailboxes and aliases as Odoo records, synced with the EmBoux connector",
    "version": "19.0.1.0.0",
    "category": "Productivity/Email Hosting",
    "website": "https://github.com/emboux/emboux",
    "author": "EmBoux",
    "license": "AGPL-3",
    "depends": ["base", "mail"],
    "data": [],
    "installable": True,
    "application": True,
}
