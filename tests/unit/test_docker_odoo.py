"""The deployment's Odoo image (docker/Dockerfile.odoo) is built from what
the dev stack runs (scripts/dev/stack-odoo.sh): the same Debian packages,
the same Python requirements (minus the test tools), the same OCA pins."""

import pathlib
import re
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]


def dev_stack(expr):
    return subprocess.run(["bash", "-c", f". scripts/dev/stack-odoo.sh; {expr}"], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout


def dockerfile_arg(name):
    m = re.search(rf'^ARG {name}="([^"]*)"', (ROOT / "docker" / "Dockerfile.odoo").read_text(), re.M)
    assert m, f"ARG {name} missing from docker/Dockerfile.odoo"
    return m.group(1).split()


def requirement_lines(text):
    return [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def test_the_same_debian_packages_and_oca_pins():
    assert dockerfile_arg("ODOO_DEBS") == dev_stack("echo $ODOO_DEBS").split()
    assert dockerfile_arg("ODOO_OCA_ADDONS") == dev_stack("echo $ODOO_OCA_ADDONS").split()


def test_the_same_python_requirements_without_the_test_tools():
    dev = dev_stack("odoo_requirements")
    dev = dev[:dev.index("# tests:")]
    image = (ROOT / "docker" / "odoo" / "requirements.txt").read_text()
    assert requirement_lines(image) == requirement_lines(dev)
