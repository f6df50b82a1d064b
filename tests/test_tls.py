"""TLS is always verified: a certificate from an unknown CA stops the run (no retries, no data),
and extension.ca_bundle makes a private CA trusted."""

from __future__ import annotations

import ssl

import pytest
import trustme
from e2e import authz_sync, command_env, ledger

from sync.simulator import Simulator, generate_tenant


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture
def https_sim(ca):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with Simulator(generate_tenant(users=120, groups=10, memberships=200), tls=context) as sim:
        yield sim


def test_an_unknown_certificate_is_refused_without_retrying(https_sim, sqlite_url):
    assert https_sim.url.startswith("https://")
    result = authz_sync("run", env=command_env(https_sim, sqlite_url))
    assert result.exit_code == 69, result.output
    assert "TLS certificate could not be verified" in result.stderr
    assert "extension.ca_bundle" in result.stderr
    assert ledger(sqlite_url)[-1]["status"] == "failed"


def test_a_ca_bundle_makes_a_private_ca_trusted(https_sim, sqlite_url, ca, tmp_path):
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    env = command_env(https_sim, sqlite_url, AUTHZ_SYNC_EXTENSION_CA_BUNDLE=str(bundle))
    result = authz_sync("run", env=env)
    assert result.exit_code == 0, result.output
    assert "120 users" in result.stdout
