# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
{
    "name": "EmBoux SaaS",
    "summary": "EmBoux email hosting as a SaaS offer: the place for plans and billing glue",
    "version": "19.0.1.0.0",
    "category": "Productivity/Email Hosting",
    "website": "https://github.com/emboux/emboux",
    "author": "EmBoux",
    "license": "AGPL-3",
    "depends": ["emboux_core"],
    "data": [],
    "installable": True,
    "application": False,
}
