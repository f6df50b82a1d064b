"""Same rows whichever source: a user read from the export job's file maps to exactly the row
the same user gives through /api/users, so switching sources writes nothing."""

from __future__ import annotations

from sync.config import Auth0Settings, DatabaseSettings, ExtensionSettings, Secret, Settings
from sync.simulator import Simulator, generate_tenant
from sync.source.export_job import ExportJobClient, ExportSettings, compare_counts
from sync.source.extension import ExtensionApi
from sync.source.users import UserReader
from sync.transform import user_row


def test_every_user_gives_the_same_row_through_the_export_and_the_extension() -> None:
    # Over 1000 users, so /api/users is read in created_at windows, as on a real tenant.
    tenant = generate_tenant(users=1500, groups=5, memberships=50)
    with Simulator(tenant, management_scopes=("read:users",)) as sim:
        sim.jobs.polls_until_done = 1
        settings = Settings(
            auth0=Auth0Settings(sim.url, sim.client_id, Secret(sim.client_secret)),
            extension=ExtensionSettings(sim.api_url),
            database=DatabaseSettings("sqlite://"),
        )
        with ExtensionApi(settings) as api:
            reader = UserReader(api.users_page)
            through_api = {u: user_row(x) for piece in reader.read() for u, x in piece.items()}
            total = api.users_page(1, 1, None)["total"]
        export = ExportJobClient(ExportSettings.from_settings(settings), sleep=lambda _: None)
        with export:
            through_export = {u: user_row(x) for p in export.read() for u, x in p.items()}
    assert len(reader.slices) > 1  # the windows really were walked
    assert len(through_api) == len(tenant.users)
    assert through_export.keys() == through_api.keys()
    for user_id, row in through_api.items():
        assert through_export[user_id] == row, user_id
    assert compare_counts(export.count, total).level == "ok"
    # the awkward users are among them: no e-mail, never logged in, MFA and blocked
    rows = through_api.values()
    assert any(r["email"] is None for r in rows) and any(r["last_login"] is None for r in rows)
    assert any(r["multifactor"] for r in rows) and any(r["blocked"] for r in rows)
