# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
{
    "name": "EmBoux SaaS",
    "summary": "EmBoux email hosting as a SaaS offer: plans, recurring billing from usage, non-payment, portal",
    "version": "19.0.1.0.0",
    "category": "Productivity/Email Hosting",
    "website": "https://github.com/emboux/emboux",
    "author": "EmBoux",
    "license": "AGPL-3",
    "depends": ["emboux_core", "account", "portal", "sale", "contract", "contract_variable_quantity"],
    "data": [
        "security/ir.model.access.csv",
        "security/emboux_saas_security.xml",
        "data/contract_data.xml",
        "data/mail_template_data.xml",
        "data/ir_cron.xml",
        "views/emboux_plan_views.xml",
        "views/emboux_tenant_views.xml",
        "views/account_move_views.xml",
        "views/portal_templates.xml",
    ],
    "installable": True,
    "application": False,
}
