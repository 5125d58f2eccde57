"""bench/peer.py's peer: Baton's one-stage approval modelled with Viewflow 2.4 (AGPL).

Installed only by `make bench-peer` (requirements/bench.txt) and loaded only by
bench/peer_settings.py; nothing in the product imports it.
"""
