"""A bug during a run still leaves the ledger true: the run row says failed, not running."""

from __future__ import annotations

import httpx
import pytest
from e2e import api_settings, ledger

from sync.runner.run import run_sync


def test_an_unexpected_error_marks_the_run_failed(sqlite_url):
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "token-value-1", "expires_in": 60})
        raise RuntimeError("a bug somewhere")

    settings = api_settings(
        sqlite_url, secret="runner-secret", extension_url="https://ext.example/api"
    )
    with pytest.raises(RuntimeError):
        run_sync(settings, transport=httpx.MockTransport(handler), sleep=lambda s: None)
    run = ledger(sqlite_url)[-1]
    assert (run["status"], run["exit_code"]) == ("failed", 70)
    assert "internal error RuntimeError" in run["error"]
