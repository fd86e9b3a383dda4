"""Secrets are held for a bounded time, and read again at once (but not too often) when the
value in hand was refused. The reader here is a plain function over a dict: what is under test
is when the cache reads, and what it hands out."""

from __future__ import annotations

import pytest

from wanflow.secret_cache import CACHE_TTL_S, REREAD_AFTER_S, SecretCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Store:
    """What Secrets Manager holds, and how often it was asked."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.reads = 0
        self.down = False

    def read(self, secret_id: str) -> str:
        self.reads += 1
        if self.down:
            raise OSError("secrets unreachable")
        return self.value


def test_a_changed_secret_reaches_a_warm_cache_within_the_ttl() -> None:
    clock, store = Clock(), Store("placeholder")
    cache = SecretCache(store.read, clock=clock)
    assert cache.get("key") == "placeholder"
    store.value = "real-key"
    clock.now += CACHE_TTL_S - 1
    assert cache.get("key") == "placeholder"  # held, no read
    clock.now += 1
    assert cache.get("key") == "real-key"
    assert store.reads == 2


def test_a_refused_value_is_read_again_at_once_once_old_enough() -> None:
    clock, store = Clock(), Store("old")
    cache = SecretCache(store.read, clock=clock)
    assert cache.get("key") == "old"
    store.value = "new"
    # GIVEN a value read a moment ago: a re-read would give the same, so none is made
    assert cache.reread("key", "old") is None
    assert store.reads == 1
    # WHEN it is a few seconds old and refused, THEN the new value comes at once
    clock.now += REREAD_AFTER_S
    assert cache.reread("key", "old") == "new"
    assert cache.get("key") == "new"
    assert store.reads == 2


def test_a_flood_of_refusals_is_at_most_one_read_per_interval() -> None:
    clock, store = Clock(), Store("s3cret")
    cache = SecretCache(store.read, clock=clock)
    cache.get("key")
    # WHEN a thousand forged signatures are refused over 30 s, the secret unchanged
    for _ in range(1000):
        clock.now += 0.03
        assert cache.reread("key", "s3cret") is None
    # THEN the secret was read again about once per REREAD_AFTER_S, not a thousand times
    assert store.reads <= 1 + 30 / REREAD_AFTER_S + 1


def test_a_value_another_caller_already_renewed_is_handed_out_without_a_read() -> None:
    clock, store = Clock(), Store("old")
    cache = SecretCache(store.read, clock=clock)
    cache.get("key")
    clock.now += REREAD_AFTER_S
    store.value = "new"
    assert cache.reread("key", "old") == "new"  # the first of ten parallel looks
    assert cache.reread("key", "old") == "new"  # the nine others: no read
    assert store.reads == 2


def test_a_failed_read_keeps_the_value_held() -> None:
    clock, store = Clock(), Store("s3cret")
    cache = SecretCache(store.read, clock=clock)
    cache.get("key")
    store.down = True
    clock.now += CACHE_TTL_S + 1
    assert cache.get("key") == "s3cret"
    clock.now += REREAD_AFTER_S
    assert cache.reread("key", "s3cret") is None
    # AND without a value held, a failed read is the caller's error
    with pytest.raises(OSError, match="unreachable"):
        SecretCache(store.read, clock=clock).get("key")


def test_a_value_read_past_the_extension_outlives_the_extensions_older_copy() -> None:
    clock = Clock()
    extension, manager = Store("old"), Store("new")  # the extension still caches the old one
    cache = SecretCache(extension.read, extension_ttl_s=300, clock=clock)
    cache.get("key")
    clock.now += REREAD_AFTER_S
    assert cache.reread("key", "old", manager.read) == "new"
    # WHEN the usual TTL has passed, THEN the value is not taken back from the extension
    clock.now += CACHE_TTL_S + 1
    assert cache.get("key") == "new"
    assert extension.reads == 1
    # AND once the extension's copy has surely expired too, reads go through it again
    extension.value = "new"
    clock.now += 300
    assert cache.get("key") == "new"
    assert extension.reads == 2
