"""Settings of bench/peer.py: the embedded defaults (DATABASE_URL / REDIS_URL honoured) plus
Viewflow and the bench's Viewflow app.

Only the benchmark loads this module: the product's settings never mention Viewflow (AGPL;
installed from requirements/bench.txt by `make bench-peer` alone).
"""

from config.settings.embedded import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "viewflow", "viewflow.workflow", "bench.peer_viewflow"]  # noqa: F405
# The benchmark drives its flow from code: no Viewflow site, so none of the middleware
# Viewflow would otherwise append to MIDDLEWARE for its pages.
VIEWFLOW = {"AUTOREGISTER": False}
