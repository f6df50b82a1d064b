"""A faithful fake of Auth0's token endpoint and the Authorization Extension API, with a
deterministic generated tenant and the ground truth a correct sync must produce from it.

Used by the test suite and by ``authz-sync simulate`` (a local demo target)::

    tenant = generate_tenant(users=300, groups=30, memberships=600)
    with Simulator(tenant) as sim:
        ...  # point the sync at sim.url (Auth0 domain) and sim.api_url (extension)
        assert synced_rows == ground_truth(tenant)
"""

from .faults import Fault
from .server import RequestRecord, Simulator, serve_forever
from .tenant import Tenant, generate_tenant
from .truth import ground_truth, truth_as_json

__all__ = [
    "Fault",
    "RequestRecord",
    "Simulator",
    "Tenant",
    "generate_tenant",
    "ground_truth",
    "serve_forever",
    "truth_as_json",
]
