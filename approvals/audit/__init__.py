"""The auditors' part of Baton: read-only pages, exports and evidence over the audit trail.

    filters.py    the filter of the log, the exports and the bundles (one form, one query)
    selectors.py  the log: keyset pages of entries rendered for people, counts
    evidence.py   a request's evidence page: its history in order, verified
    export.py     streamed CSV / JSON Lines with their completeness record (an audited export)
    bundle.py     evidence bundles: entries, checkpoint, proofs, public key, standalone verifier
    sod.py        the separation-of-duties report
    views.py      HTTP, thin; GET only (auditors change nothing)

Who may: auditors and superusers (`approvals.policies.may_audit`) see everything here; a
request's evidence page is also open to whoever may see the request (`may_view_evidence`).
The engine's side (checkpoints, the verifier) is in workflows/.
"""
