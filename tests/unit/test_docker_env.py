"""docker/mail.env.example documents every variable the deployment's
services require: each name an entry point checks (`need ...`, the mail
container's validated lists and `${NAME:?...}`) and each {{NAME}} of the
mail-server templates that the mail entry point does not set itself."""

import pathlib
import re

DOCKER = pathlib.Path(__file__).resolve().parents[2] / "docker"


def documented():
    text = (DOCKER / "mail.env.example").read_text()
    return set(re.findall(r"(?m)^([A-Z][A-Z0-9_]*)=", text))


def required_by_entry_points():
    names = set()
    for script in DOCKER.glob("*.sh"):
        text = script.read_text().replace("\\\n", " ")
        for line in re.findall(r"(?m)^\s*need ([A-Z0-9_ ]+)$", text):
            names.update(line.split())
        names.update(re.findall(r"\$\{([A-Z][A-Z0-9_]*):\?", text))
        for line in re.findall(r"(?m)^for v in ([A-Z0-9_ ]+); do", text):
            names.update(line.split())
    return names


def template_placeholders():
    names = set()
    for part in ("postfix", "dovecot", "opendkim"):
        for tpl in (DOCKER / part).iterdir():
            if tpl.is_file():
                names.update(re.findall(r"\{\{([A-Z0-9_]+)\}\}", tpl.read_text()))
    entry = (DOCKER / "entrypoint.sh").read_text()
    set_inside = set(re.findall(r"(?m)^export ((?:[A-Z][A-Z0-9_]*=\S*\s*)+)", entry))
    inside = {pair.split("=")[0] for group in set_inside for pair in group.split()}
    return names - inside


def test_every_required_variable_is_in_the_example():
    required = required_by_entry_points()
    assert {"POSTGRES_PASSWORD", "ODOO_DB_PASSWORD", "SMTP_PORT", "MAIL_HOSTNAME"} <= required  # the scan works
    assert sorted(required - documented()) == []


def test_every_template_placeholder_is_in_the_example_or_set_by_the_entry_point():
    placeholders = template_placeholders()
    assert "OPENDKIM_DB_PASSWORD" in placeholders and "POSTFIX_QUEUE_DIR" not in placeholders  # the scan works
    assert sorted(placeholders - documented()) == []
