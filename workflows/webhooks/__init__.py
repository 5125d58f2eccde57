"""Webhooks: subscriptions, Standard Webhooks signing, delivery from the outbox.

registry.py   what a workflow tells webhooks (event types of a step, payload, who may see it)
signing.py    secrets and the `webhook-signature` header (Standard Webhooks, v1 HMAC-SHA256)
events.py     deliveries written in the transition's transaction, one per matching endpoint
services.py   subscriptions (create, update, rotate, delete) and delivering one attempt
selectors.py  the owner's subscriptions and delivery log
tasks.py      the Celery task that makes one attempt
"""
