"""The policy daemon is a small asyncio process: importing it must not load
the REST API's web stack (Flask, marshmallow, apispec)."""

import subprocess
import sys

WEB_STACK = ("flask", "marshmallow", "apispec", "werkzeug")


def _loaded_after(module):
    code = (f"import sys, {module}\n"
            f"print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in {WEB_STACK!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_the_policy_daemon_does_not_import_flask():
    assert _loaded_after("emboux_connector.policy.daemon") == []


def test_the_package_itself_imports_nothing_heavy():
    assert _loaded_after("emboux_connector") == []


def test_the_check_sees_flask_when_it_is_imported():
    # the probe itself works: the app module does load the web stack
    assert "flask" in _loaded_after("emboux_connector.app")
