# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Odoo decides on the connector's error `code`, never on its English `detail`:
the detail is only shown to the user (in a sentence the code chooses)."""

from ..services.connector_client import ConnectorClient, ConnectorRefused, friendly
from .common import API_KEY, API_URL, EmbouxCase, api


class TestErrorCodes(EmbouxCase):

    def test_refusals_carry_the_connector_code(self):
        dom = self.new_domain()
        self.flush_queue()
        client = ConnectorClient(API_URL, API_KEY)
        with self.assertRaises(ConnectorRefused) as caught:
            client.call("POST", "/domains/", {"name": dom.name})
        exc = caught.exception
        self.assertEqual((exc.status, exc.code), (400, "domain_exists"))
        self.assertEqual(str(exc), "This domain is already hosted on the platform (Domain already exists).")
        with self.assertRaises(ConnectorRefused) as caught:
            client.call("GET", "/domains/nowhere.emboux-odoo.test")
        self.assertEqual(caught.exception.code, "domain_not_found")
        with self.assertRaises(ConnectorRefused) as caught:
            ConnectorClient(API_URL, "not-a-token-of-this-platform").call("GET", "/domains/")
        self.assertIn(caught.exception.code, ("auth_invalid_key", "rate_limited"))

    def test_sentences_are_chosen_by_code_not_by_text(self):
        self.assertEqual(friendly("Domain quota exceeded: 3/3", "quota_exceeded"),
                         "The customer's plan allows no more of these (Domain quota exceeded: 3/3).")
        self.assertEqual(friendly("name: invalid domain name 'x'", "invalid_field"),
                         "The mail platform refused the value of name: invalid domain name 'x'")
        # the English text alone decides nothing
        self.assertEqual(friendly("Domain already exists", None),
                         "The mail platform refused the change: Domain already exists.")
        self.assertEqual(friendly("Ce domaine existe déjà", "domain_exists"),
                         "This domain is already hosted on the platform (Ce domaine existe déjà).")

    def test_replays_are_recognised_by_code(self):
        """A domain.create replayed after a lost answer is done when the code
        says domain_exists, whatever the detail says; not on the text alone."""
        dom = self.new_domain()
        job = self.pending_jobs(dom).filtered(lambda j: j.kind == "domain.create")
        self.assertEqual(len(job), 1)
        client = self.env["emboux.connector"]._client()
        client.call(*job._call())   # applied behind Odoo's back: the answer was "lost"
        body = job._call()[2]
        reworded = ConnectorRefused("x", status=400, detail="Ce domaine existe déjà", code="domain_exists")
        state, row = job._resolve_refusal(client, reworded, body)
        self.assertEqual(state, "done")
        self.assertEqual(row["name"], dom.name)
        text_only = ConnectorRefused("x", status=400, detail="Domain already exists", code=None)
        self.assertEqual(job._resolve_refusal(client, text_only, body)[0], "refused")
        self.flush_queue()
        self.assertEqual(job.state, "done", job.last_error)
        self.assertEqual(api("GET", f"/domains/{dom.name}").status_code, 200)
