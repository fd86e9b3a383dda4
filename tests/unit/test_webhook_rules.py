"""Client webhooks without I/O: the retry schedule, the address guard, signing, the target."""

from __future__ import annotations

import time

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from wanflow.client_webhooks.address_guard import Refused, address_refusal, destination
from wanflow.client_webhooks.deliverer import (
    MAX_ATTEMPTS,
    RETRY_DELAYS_S,
    retry_delay_s,
    signed_headers,
)
from wanflow.client_webhooks.queue import webhook_id
from wanflow.client_webhooks.targets import check_url, parse_target
from wanflow.submission import webhook_of
from wanflow.task import WEBHOOK_EVENTS
from wanflow.tenants import new_webhook_secret

FLASH = "wan2.6-image-to-video-flash"


def test_the_retry_schedule_spans_more_than_a_day_in_eight_attempts() -> None:
    assert MAX_ATTEMPTS == 8
    assert sum(RETRY_DELAYS_S) >= 24 * 3600
    assert [retry_delay_s(n) for n in range(1, 4)] == [5, 300, 1800]
    assert retry_delay_s(MAX_ATTEMPTS) is None  # the last attempt is the last
    assert list(RETRY_DELAYS_S) == sorted(RETRY_DELAYS_S)  # never sooner than the one before


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("fc00::1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("2002:7f00:1::", "loopback"),  # 6to4 around 127.0.0.1
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "non-public"),  # carrier-grade NAT
    ],
)
def test_the_guard_refuses_addresses_off_the_public_internet(address: str, why: str) -> None:
    assert address_refusal(address) == why


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_the_guard_lets_public_addresses_through(address: str) -> None:
    assert address_refusal(address) is None


def test_the_local_stack_may_post_to_loopback_but_not_to_metadata_or_private() -> None:
    assert address_refusal("127.0.0.1", allow_loopback=True) is None
    assert address_refusal("::ffff:127.0.0.1", allow_loopback=True) is None
    assert address_refusal("169.254.169.254", allow_loopback=True) == "link-local"
    assert address_refusal("10.0.0.1", allow_loopback=True) == "private"


def test_a_name_resolving_to_any_private_address_is_refused() -> None:
    # GIVEN a name with one public and one private address (a classic rebinding setup)
    def resolver(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "10.0.0.7"]

    # THEN nothing is posted to it
    with pytest.raises(Refused, match="private"):
        destination("https://hooks.example.com/x", allow_local=False, resolver=resolver)


def test_the_connection_is_pinned_to_the_checked_address_keeping_name_for_host_and_tls() -> None:
    def resolver(host: str, port: int) -> list[str]:
        assert (host, port) == ("hooks.example.com", 8443)
        return ["2606:4700:4700::1111"]

    where = destination(
        "https://hooks.example.com:8443/in?x=1", allow_local=False, resolver=resolver
    )
    assert where.url == "https://[2606:4700:4700::1111]:8443/in?x=1"
    assert where.headers == {"Host": "hooks.example.com:8443"}
    assert where.extensions == {"sni_hostname": "hooks.example.com"}


def test_plain_http_is_refused_outside_the_local_stack() -> None:
    with pytest.raises(Refused, match="HTTPS"):
        destination("http://hooks.example.com/", allow_local=False, resolver=lambda h, p: [])


def test_signed_headers_verify_with_the_standard_webhooks_library() -> None:
    secret = new_webhook_secret()
    body = '{"type":"task.succeeded","data":{}}'
    headers = signed_headers(secret, "msg_1", time.time(), body)
    assert Webhook(secret).verify(body, headers) == {"type": "task.succeeded", "data": {}}
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"].startswith("wanflow")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace("succeeded", "failed"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_webhook_secret()).verify(body, headers)


def test_the_webhook_id_is_stable_per_task_and_event() -> None:
    assert webhook_id("tsk_1", "task.succeeded") == webhook_id("tsk_1", "task.succeeded")
    ids = {webhook_id(t, e) for t in ("tsk_1", "tsk_2") for e in WEBHOOK_EVENTS}
    assert len(ids) == 2 * len(WEBHOOK_EVENTS)


def test_a_webhook_defaults_to_every_event_and_keeps_a_known_order() -> None:
    target, problems = parse_target({"url": "https://h.example.com/in"}, allow_http=False)
    assert problems == []
    assert target is not None
    assert target.events == list(WEBHOOK_EVENTS)
    picked, _ = parse_target(
        {"url": "https://h.example.com/", "events": ["task.failed", "task.running", "task.failed"]},
        allow_http=False,
    )
    assert picked is not None
    assert picked.events == ["task.running", "task.failed"]


@pytest.mark.parametrize(
    ("webhook", "param"),
    [
        ({"url": "http://h.example.com/in"}, "webhook.url"),
        ({"url": "https://h.example.com/" + "a" * 2040}, "webhook.url"),
        ({"url": "https://10.0.0.1/in"}, "webhook.url"),
        ({"url": "https://h.example.com/a b"}, "webhook.url"),
        ({"url": 42}, "webhook.url"),
        ({}, "webhook.url"),
        ({"url": "https://h.example.com/", "events": ["task.done"]}, "webhook.events"),
        ({"url": "https://h.example.com/", "events": []}, "webhook.events"),
        ({"url": "https://h.example.com/", "secret": "x"}, "webhook.secret"),
        ("https://h.example.com/", "webhook"),
    ],
)
def test_a_bad_webhook_is_refused_naming_its_field(webhook: object, param: str) -> None:
    target, problems = parse_target(webhook, allow_http=False)
    assert target is None
    assert [p.param for p in problems] == [param]


def test_the_local_stack_accepts_plain_http_on_loopback() -> None:
    assert check_url("http://127.0.0.1:9/in", "webhook.url", "c", allow_http=True) == []
    assert check_url("http://localhost:9/in", "webhook.url", "c", allow_http=True) == []
    assert check_url("http://127.0.0.1:9/in", "webhook.url", "c", allow_http=False) != []
    # plain http elsewhere is refused even locally, as the catalog refuses it offline
    [problem] = check_url("http://your-domain.com/hook", "callback_url", "c", allow_http=True)
    assert problem.message == "callback_url: callback_url must be an HTTPS URL"


def test_the_flash_models_callback_url_is_the_webhook_and_never_reaches_the_catalog() -> None:
    body = {"model": FLASH, "prompt": "p", "callback_url": "https://h.example.com/done"}
    rest, target, problems = webhook_of(body, allow_http=False)
    assert "callback_url" not in rest
    assert problems == []
    assert target is not None
    assert (target.url, target.events) == ("https://h.example.com/done", list(WEBHOOK_EVENTS))


def test_callback_url_and_webhook_together_are_refused_naming_callback_url() -> None:
    body = {
        "model": FLASH,
        "callback_url": "https://h.example.com/done",
        "webhook": {"url": "https://h.example.com/other"},
    }
    _, target, problems = webhook_of(body, allow_http=False)
    assert target is None
    assert [(p.param, p.code) for p in problems] == [("callback_url", "forbidden_combination")]


def test_other_models_keep_callback_url_for_the_catalog_to_refuse() -> None:
    body = {"model": "wan2.6", "callback_url": "https://h.example.com/done"}
    rest, target, _ = webhook_of(body, allow_http=False)
    assert rest["callback_url"] == "https://h.example.com/done"
    assert target is None
