"""The REST API under /api/v1/: thin views over the product's services and selectors.

errors.py       RFC 9457 problem details for every error, domain errors mapped
auth.py         Bearer API tokens, read-only tokens, throttling per token
idempotency.py  Idempotency-Key on every POST
serializers.py  input checks and representations
views.py        request types, requests, actions
wait.py         the async long-poll for a request's next change
work.py         the caller's inbox (claim, release, reassign) and the audit trail
"""
