"""Fixtures shared by the chain tests: a signing key, and aged entries on a plan."""

from __future__ import annotations

import pytest

import auditlens as al
from auditlens.chain.notes import SigningKey
from auditlens.retention import set_plan
from tests.helpers import ORG, ORG2, append_aged


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.generate("audit.test/log")


@pytest.fixture
def aged(store: al.AuditStore) -> al.AuditStore:
    """ORG and ORG2: 40 entries from 60 to 21 days ago, then 10 recent ones; both on starter."""
    append_aged(store)
    set_plan(store, ORG, "starter")
    set_plan(store, ORG2, "starter")
    return store
