"""A local stand-in for Mailgun's HTTP API: the endpoints the connector uses,
answering like Mailgun, recording every call for the tests.

    python tests/standins/mailgun.py --port 8625 --api-key KEY

GET /_calls returns the recorded calls ({method, path, form}); DELETE /_calls
clears them; GET /_domains/<name> returns the stand-in's state of a domain
(credentials, webhooks, dkim authority). Nothing here talks to the internet.
"""

import argparse
import base64
import threading

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, jsonify, request

app = Flask(__name__)
STATE = {"domains": {}, "calls": []}
LOCK = threading.Lock()
API_KEY = None


def _pubkey():
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def _records(d):
    authority = d["dkim_authority"]
    return [
        {"record_type": "TXT", "valid": "valid" if d["state"] == "active" else "unknown",
         "name": d["name"], "value": "v=spf1 include:mailgun.org ~all"},
        {"record_type": "TXT", "valid": "valid" if d["state"] == "active" else "unknown",
         "name": f"{d['selector']}._domainkey.{authority}", "value": f"k=rsa; p={d['pubkey']}"},
        {"record_type": "CNAME", "valid": "unknown", "name": f"email.{d['name']}", "value": "mailgun.org"},
    ]


def _domain_body(d, message):
    return {"message": message,
            "domain": {"name": d["name"], "state": d["state"], "type": "custom",
                       "smtp_login": f"postmaster@{d['name']}", "created_at": d["created_at"]},
            "receiving_dns_records": [
                {"record_type": "MX", "priority": "10", "valid": "unknown", "value": "mxa.mailgun.org"}],
            "sending_dns_records": _records(d)}


@app.before_request
def record_and_auth():
    if request.path.startswith("/_"):
        return None
    with LOCK:
        STATE["calls"].append({"method": request.method, "path": request.path,
                               "form": request.form.to_dict()})
    auth = request.authorization
    if not auth or auth.username != "api" or auth.password != API_KEY:
        return "Forbidden", 401
    return None


def _get(name):
    d = STATE["domains"].get(name)
    if d is None:
        return None, (jsonify({"message": "Domain not found"}), 404)
    return d, None


@app.post("/v4/domains")
def create_domain():
    name = (request.form.get("name") or "").lower()
    if not name:
        return jsonify({"message": "'name' parameter is missing"}), 400
    with LOCK:
        if name in STATE["domains"]:
            return jsonify({"message": "This domain name is already taken"}), 400
        import datetime
        d = {"name": name, "state": "unverified", "selector": "mx", "pubkey": _pubkey(),
             "dkim_authority": name, "credentials": {}, "webhooks": {},
             "created_at": datetime.datetime.utcnow().strftime("%a, %d %b %Y %H:%M:%S GMT")}
        STATE["domains"][name] = d
    return jsonify(_domain_body(d, "Domain DNS records have been created"))


@app.get("/v4/domains/<name>")
def get_domain(name):
    d, err = _get(name)
    return err or jsonify(_domain_body(d, "Domain found"))


@app.put("/v4/domains/<name>/verify")
def verify_domain(name):
    d, err = _get(name)
    if err:
        return err
    d["state"] = "active"
    return jsonify(_domain_body(d, "Domain DNS records have been updated"))


@app.delete("/v3/domains/<name>")
def delete_domain(name):
    with LOCK:
        if STATE["domains"].pop(name, None) is None:
            return jsonify({"message": "Domain not found"}), 404
    return jsonify({"message": "Domain has been deleted"})


@app.put("/v3/domains/<name>/dkim_authority")
def dkim_authority(name):
    d, err = _get(name)
    if err:
        return err
    self_ = request.form.get("self", "true").lower() == "true"
    parent = name.split(".", 1)[1] if "." in name else name
    d["dkim_authority"] = name if self_ else parent
    return jsonify({"message": "Domain DKIM authority has been changed", "changed": True,
                    "sending_dns_records": _records(d)})


@app.post("/v3/domains/<name>/credentials")
def create_credential(name):
    d, err = _get(name)
    if err:
        return err
    login, password = request.form.get("login", ""), request.form.get("password", "")
    if "@" not in login:
        login = f"{login}@{name}"
    if not 5 <= len(password) <= 32:
        return jsonify({"message": "Password length must be between 5 and 32 characters."}), 400
    if login in d["credentials"]:
        return jsonify({"message": "Credentials with this login already exist"}), 409
    d["credentials"][login] = password
    return jsonify({"message": "Created 1 credentials pair(s)"})


@app.put("/v3/domains/<name>/credentials/<login>")
def change_credential(name, login):
    d, err = _get(name)
    if err:
        return err
    if login not in d["credentials"]:
        return jsonify({"message": "Login not found"}), 404
    d["credentials"][login] = request.form.get("password", "")
    return jsonify({"message": "Password changed"})


@app.get("/v3/domains/<name>/credentials")
def list_credentials(name):
    d, err = _get(name)
    return err or jsonify({"items": [{"login": k} for k in d["credentials"]],
                           "total_count": len(d["credentials"])})


@app.post("/v3/domains/<name>/webhooks")
def create_webhook(name):
    d, err = _get(name)
    if err:
        return err
    wid, url = request.form.get("id"), request.form.get("url")
    if wid in d["webhooks"]:
        return jsonify({"message": "Webhook already exists"}), 400
    d["webhooks"][wid] = [url]
    return jsonify({"message": "Webhook has been created", "webhook": {"urls": [url]}})


@app.put("/v3/domains/<name>/webhooks/<wid>")
def update_webhook(name, wid):
    d, err = _get(name)
    if err:
        return err
    d["webhooks"][wid] = [request.form.get("url")]
    return jsonify({"message": "Webhook has been updated", "webhook": {"urls": d["webhooks"][wid]}})


@app.get("/_calls")
def calls():
    return jsonify(STATE["calls"])


@app.delete("/_calls")
def clear_calls():
    STATE["calls"].clear()
    return jsonify({})


@app.get("/_domains/<name>")
def state(name):
    d = STATE["domains"].get(name)
    if d is None:
        return jsonify({"message": "Domain not found"}), 404
    return jsonify({k: v for k, v in d.items() if k != "pubkey"})


def main():
    global API_KEY
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--api-key", required=True)
    args = ap.parse_args()
    API_KEY = args.api_key
    from werkzeug.serving import run_simple
    run_simple("127.0.0.1", args.port, app, threaded=True)


if __name__ == "__main__":
    main()
