"""EmBoux connector: the REST API in front of the mail DB (emboux_connector.app,
create_app), its jobs, and the Postfix policy daemon (emboux_connector.policy).

Nothing is imported here: the policy daemon must not load Flask and marshmallow
with the package.
"""
