"""Fixtures of the outbound-control tests (helpers in outbound_helpers.py)."""

import os
import pathlib
import subprocess
import sys

import pytest

from outbound_helpers import Outbound, PolicyClient, Submitter, free_port, wait_port, wait_until


@pytest.fixture(scope="session")
def submit(devenv):
    if not devenv.get("SUBMISSION_PORT") or not devenv.get("POLICYD_PORT"):
        pytest.fail("the mail stack or the policy daemon is not up (./dev up)")
    return Submitter(devenv)


@pytest.fixture
def outbound(api, tenant):
    return Outbound(api, tenant)


@pytest.fixture
def policyd(devenv, tmp_path):
    """policyd(dsn=None, **env) -> port of a new emboux-policyd process (stopped at
    teardown; policyd.procs are their Popen objects)."""
    procs = []

    def start(dsn=None, ready=True, **env):
        port = free_port()
        penv = dict(os.environ, POLICYD_DSN=dsn or devenv["MAILDB_DSN"], **env)
        exe = pathlib.Path(sys.executable).parent / "emboux-policyd"
        with open(tmp_path / f"policyd-{port}.log", "wb") as log:  # the child keeps its own copy
            p = subprocess.Popen([str(exe), "--listen", f"127.0.0.1:{port}"], env=penv,
                                 stdout=log, stderr=subprocess.STDOUT)
        procs.append(p)
        assert wait_port(port), (tmp_path / f"policyd-{port}.log").read_text()
        if ready:   # answers temporary refusals until it has reached the mail DB
            c = PolicyClient(port)
            assert wait_until(lambda: c.ask(protocol_state="DATA") == "DUNNO"), \
                (tmp_path / f"policyd-{port}.log").read_text()
            c.close()
        return port

    start.procs = procs
    yield start
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
