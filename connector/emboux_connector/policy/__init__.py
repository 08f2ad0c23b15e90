"""Outbound control: the decision engine shared by the policy daemon
(emboux-policyd) and the REST API (POST /domains/{name}/outbound/increment)."""
