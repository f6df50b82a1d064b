"""The job done with dlt instead: a `rest_api` source over the extension, loaded with `merge`.

What a user would write instead of authz-sync (bench/compare.py runs it beside authz-sync):
OAuth2 client credentials from the Auth0 token endpoint (audience urn:auth0-authz-api), 1-based
pages of /api/users with page/per_page until an empty page, and the three list endpoints; every
resource merged on its id. dlt cannot slice /api/users by created_at, so the simulator it reads
has Auth0's 1000-result cap lifted. dlt writes the lists inside each record (members, nested,
roles, users, permissions, identities) as child tables; it derives no effective access, keeps
no history and compares nothing: a rerun loads everything again.

    python bench/dlt_pipeline.py DESTINATION URL PIPELINES_DIR   # settings from AUTHZ_SYNC_* env

DESTINATION is `sqlalchemy` (SQLite, MariaDB) or `postgres`. Needs `pip install '.[bench]'`.
"""

from __future__ import annotations

import os
import sys

import dlt
from dlt.sources.rest_api import rest_api_source

PER_PAGE = 100
LISTS = {"groups": "groups", "roles": "roles", "permissions": "permissions"}


def extension_source():
    domain = os.environ["AUTHZ_SYNC_AUTH0_DOMAIN"]
    auth = {
        "type": "oauth2_client_credentials",
        "access_token_url": f"{domain}/oauth/token",
        "client_id": os.environ["AUTHZ_SYNC_CLIENT_ID"],
        "client_secret": os.environ["AUTHZ_SYNC_CLIENT_SECRET"],
        "access_token_request_data": {"audience": "urn:auth0-authz-api"},
    }
    users = {
        "name": "users",
        "primary_key": "user_id",
        "endpoint": {
            "path": "users",
            "params": {"per_page": PER_PAGE},
            "data_selector": "users",
            "paginator": {
                "type": "page_number",
                "base_page": 1,
                "page_param": "page",
                "total_path": None,  # /api/users' total counts users, not pages
                "stop_after_empty_page": True,
            },
        },
    }
    lists = [
        {
            "name": name,
            "primary_key": "_id",
            "endpoint": {"path": name, "data_selector": key, "paginator": "single_page"},
        }
        for name, key in LISTS.items()
    ]
    return rest_api_source(
        {
            "client": {"base_url": os.environ["AUTHZ_SYNC_EXTENSION_URL"] + "/", "auth": auth},
            "resource_defaults": {"write_disposition": "merge"},
            "resources": [users, *lists],
        }
    )


def main(destination: str, url: str, pipelines_dir: str) -> None:
    target = (
        dlt.destinations.postgres(credentials=url)
        if destination == "postgres"
        else dlt.destinations.sqlalchemy(credentials=url)
    )
    pipeline = dlt.pipeline(
        pipeline_name="authz_extension",
        destination=target,
        dataset_name="authz",
        pipelines_dir=pipelines_dir,
    )
    info = pipeline.run(extension_source())
    rows = sum(pipeline.last_trace.last_normalize_info.row_counts.values())
    print(f"dlt loaded {rows} rows in {len(info.loads_ids)} load(s)")


if __name__ == "__main__":
    main(*sys.argv[1:4])
