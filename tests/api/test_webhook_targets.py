"""Webhook target policy (no SSRF), the deadline-bound call to the checked address, and what
a delivery keeps of an answer. Every server here listens on 127.0.0.1 only."""

import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest
from django.db import connections, transaction

from api import outbound
from api.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from api.webhooks import deliver, dispatch_new_events
from mdm.models import OutboxEvent
from tests.api.conftest import ACME, load
from tests.api.receiver import Receiver, TrickleServer

pytestmark = pytest.mark.django_db

REFUSED_URLS = [
    "http://127.0.0.1:8080/hook",  # loopback
    "http://localhost:6379/",  # loopback by name (the broker's port)
    "http://169.254.169.254/latest/meta-data/",  # link-local: cloud metadata
    "http://10.0.0.5/hook",  # private
    "http://172.16.0.1/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",  # shared address space
    "http://0.0.0.0:8000/",  # unspecified
    "http://224.0.0.1/",  # multicast
    "http://240.0.0.1/",  # reserved
    "http://[::1]:8000/",  # IPv6 loopback
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped IPv6
    "http://[::ffff:169.254.169.254]/",
    "http://[fe80::1]/",  # IPv6 link-local
    "http://[fc00::1]/",  # IPv6 unique local
    "ftp://ftp.example.com/",  # not http(s)
]


@pytest.fixture
def public_only(settings):
    settings.KEYSTONE_WEBHOOK_ALLOW_PRIVATE_TARGETS = False


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_subscribing_an_internal_or_non_http_target_is_refused(crm, public_only, url):
    response = crm.post("/api/v1/webhooks/subscriptions", {"url": url}, format="json")

    assert response.status_code == 422, response.json()
    assert "url" in response.json()["error"]["fields"]
    assert not WebhookSubscription.objects.exists()


def test_changing_a_subscription_to_an_internal_target_is_refused(crm, settings):
    settings.KEYSTONE_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    created = crm.post(
        "/api/v1/webhooks/subscriptions", {"url": "http://127.0.0.1:9/x"}, format="json"
    ).json()
    settings.KEYSTONE_WEBHOOK_ALLOW_PRIVATE_TARGETS = False

    response = crm.patch(
        f"/api/v1/webhooks/subscriptions/{created['id']}",
        {"url": "http://169.254.169.254/"},
        format="json",
    )

    assert response.status_code == 422
    assert "url" in response.json()["error"]["fields"]


@pytest.mark.parametrize(
    "host",
    ["2130706433", "0177.0.0.1", "0x7f.0.0.1", "127.1", "017700000001", "[::ffff:7f00:1]"],
)
def test_numbers_spelled_other_ways_are_judged_as_the_address_they_are(host):
    with pytest.raises(outbound.TargetRefused, match="loopback"):
        outbound.check_target(f"http://{host}/hook", allow_private=False)


@pytest.mark.parametrize(
    "address",
    ["64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "::127.0.0.1", "2001:0:4136:e378:8000:63bf:80ff:fffe"],
)
def test_ipv4_inside_ipv6_is_judged_as_the_ipv4_address(address):
    reason = outbound.address_refusal(ipaddress.ip_address(address), allow_private=False)

    assert reason is not None and "inside" in reason


def test_public_addresses_pass_and_private_ones_only_when_allowed():
    def refused(address, allow_private=False):
        return outbound.address_refusal(ipaddress.ip_address(address), allow_private=allow_private)

    assert refused("93.184.216.34") is None and refused("2606:2800:220:1::1") is None
    assert refused("127.0.0.1") and refused("127.0.0.1", allow_private=True) is None
    assert refused("10.1.2.3", allow_private=True) is None
    assert refused("169.254.169.254", allow_private=True)  # metadata: never
    assert refused("224.0.0.1", allow_private=True)


def test_a_stored_internal_target_is_checked_again_at_delivery(crm, settings):
    settings.KEYSTONE_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    with Receiver() as receiver:
        subscription = WebhookSubscription.objects.create(url=receiver.url, last_event_id=0)
        load("crm", [{**ACME, "source_key": "1"}])
        (delivery_id,) = dispatch_new_events()
        settings.KEYSTONE_WEBHOOK_ALLOW_PRIVATE_TARGETS = False

        status = deliver(delivery_id)

    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert receiver.requests == []
    assert (status, delivery.last_error) == (DeliveryStatus.FAILED, "refused_target")
    assert subscription.url == receiver.url


def test_the_call_goes_to_the_checked_address_with_the_name_as_host():
    """`hooks.example.test` resolves nowhere here: the request still reaches the address that
    was checked for it, so no second lookup (DNS rebinding) can send it elsewhere."""
    with Receiver() as receiver:
        target = outbound.Target(
            scheme="http",
            host="hooks.example.test",
            port=receiver.port,
            path="/hook?x=1",
            addresses=("127.0.0.1",),
        )

        code = outbound.post(
            target, b"{}", {"X-Test": "1"}, deadline_seconds=5, max_response_bytes=8192
        )

    assert code == 200
    (request,) = receiver.requests
    assert request["headers"]["Host"] == f"hooks.example.test:{receiver.port}"


def test_a_trickling_receiver_cannot_hold_a_delivery_past_its_deadline(crm, settings):
    """One byte every 1.5 s: with a per-read timeout of 2 s this held a delivery 18 s."""
    settings.KEYSTONE_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.KEYSTONE_WEBHOOK_TIMEOUT_SECONDS = 2
    with TrickleServer(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", lasts=6) as server:
        WebhookSubscription.objects.create(url=server.url, last_event_id=0)
        load("crm", [{**ACME, "source_key": "1"}])
        (delivery_id,) = dispatch_new_events()
        started = time.monotonic()
        status = deliver(delivery_id)
        seconds = time.monotonic() - started

    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert seconds < 3, f"the delivery took {seconds:.1f} s with a 2 s deadline"
    assert (status, delivery.last_error) == (DeliveryStatus.FAILED, "timeout")


def test_an_endless_answer_is_cut_at_the_byte_cap(settings):
    settings.KEYSTONE_WEBHOOK_MAX_RESPONSE_BYTES = 1024
    listener = socket.create_server(("127.0.0.1", 0))

    def answer_forever():
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            try:
                for _ in range(10_000):
                    conn.sendall(b"HTTP/1.1 200 " + b"O" * 4096)
            except OSError:
                pass

    thread = threading.Thread(target=answer_forever, daemon=True)
    thread.start()
    target = outbound.check_target(
        f"http://127.0.0.1:{listener.getsockname()[1]}/", allow_private=True
    )

    with pytest.raises(outbound.CallFailed) as failed:
        outbound.post(target, b"{}", {}, deadline_seconds=5, max_response_bytes=1024)
    listener.close()
    thread.join(5)

    assert failed.value.error_class == "bad_response"


def test_a_delivery_keeps_the_status_code_never_the_answer(crm, settings):
    settings.KEYSTONE_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    secret = b"internal error: postgres://admin:hunter2@10.0.0.3/prod"
    with Receiver(status=500, body=secret) as receiver:
        subscription = crm.post(
            "/api/v1/webhooks/subscriptions", {"url": receiver.url}, format="json"
        ).json()
        load("crm", [{**ACME, "source_key": "1"}])
        (delivery_id,) = dispatch_new_events()
        deliver(delivery_id)

    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    shown = crm.get(f"/api/v1/webhooks/subscriptions/{subscription['id']}/deliveries")
    assert (delivery.response_code, delivery.last_error) == (500, "http_status")
    assert shown.status_code == 200 and shown.json()["results"][0]["response_code"] == 500
    assert b"hunter2" not in shown.content


def test_connection_errors_say_only_their_class(crm, settings):
    settings.KEYSTONE_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    closed = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{closed.getsockname()[1]}/hook"
    closed.close()  # nothing listens there now
    WebhookSubscription.objects.create(url=url, last_event_id=0)
    load("crm", [{**ACME, "source_key": "1"}])
    (delivery_id,) = dispatch_new_events()

    deliver(delivery_id)

    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert (delivery.response_code, delivery.last_error) == (None, "connect_failed")


def test_a_new_subscription_starts_from_now(crm, settings):
    settings.KEYSTONE_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    load("crm", [{**ACME, "source_key": "old"}])
    with Receiver() as receiver:
        crm.post("/api/v1/webhooks/subscriptions", {"url": receiver.url}, format="json")
        load("crm", [{**ACME, "source_key": "new", "name": "Newco"}])

        for delivery_id in dispatch_new_events():
            deliver(delivery_id)

    (request,) = receiver.requests
    assert b"Newco" in request["body"]


def test_from_event_starts_a_subscription_at_that_event(crm, settings):
    settings.KEYSTONE_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    load("crm", [{**ACME, "source_key": str(i), "name": f"Co {i}"} for i in range(3)])
    second = OutboxEvent.objects.order_by("id").values_list("id", flat=True)[1]

    created = crm.post(
        "/api/v1/webhooks/subscriptions",
        {"url": "http://127.0.0.1:9/x", "from_event": second},
        format="json",
    )
    dispatch_new_events()

    assert created.status_code == 201
    assert list(
        WebhookDelivery.objects.order_by("event_id").values_list("event_id", flat=True)
    ) == list(OutboxEvent.objects.filter(id__gte=second).values_list("id", flat=True))


def test_embedded_mode_delivers_after_the_commit_without_a_scheduler(
    crm, settings, django_capture_on_commit_callbacks
):
    settings.KEYSTONE_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.KEYSTONE_WEBHOOK_DISPATCH_ON_COMMIT = True
    with Receiver() as receiver:
        crm.post("/api/v1/webhooks/subscriptions", {"url": receiver.url}, format="json")

        with django_capture_on_commit_callbacks(execute=True):
            load("crm", [{**ACME, "source_key": "1"}])

    assert len(receiver.requests) == 1
    assert WebhookDelivery.objects.get().status == DeliveryStatus.DELIVERED


def test_webhook_tasks_run_on_their_own_queue(settings):
    from config.celery import app

    routes = [app.amqp.router.route({}, f"api.tasks.{name}")["queue"].name for name in (
        "dispatch_events", "deliver_webhook", "retry_due_deliveries")]  # fmt: skip

    assert set(routes) == {settings.KEYSTONE_WEBHOOK_QUEUE} != {"celery"}


@pytest.mark.postgres(reason="row locks seen from another connection")
@pytest.mark.django_db(transaction=True)
def test_no_transaction_or_row_lock_is_held_while_the_receiver_answers(settings):
    settings.KEYSTONE_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    seen = {}

    def look_from_another_connection():
        """Runs in the receiver's thread (its own connection) while the call is answered."""
        try:
            with transaction.atomic():
                row = (
                    WebhookDelivery.objects.select_for_update(nowait=True)
                    .values("attempts", "status")
                    .get()
                )
            seen["row"] = row
            seen["second_attempt"] = deliver(row_id[0])
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            seen["error"] = repr(error)
        finally:
            connections.close_all()

    row_id = []
    with Receiver(during=look_from_another_connection) as receiver:
        WebhookSubscription.objects.create(url=receiver.url, last_event_id=0)
        load("crm", [{**ACME, "source_key": "1"}])
        row_id += dispatch_new_events()
        status = deliver(row_id[0])

    assert "error" not in seen, seen.get("error")
    assert seen["row"] == {"attempts": 1, "status": "pending"}  # the claim was committed
    assert seen["second_attempt"] is None  # claimed: nobody else sends it meanwhile
    assert status == DeliveryStatus.DELIVERED
    assert len(receiver.requests) == 1


@pytest.fixture
def tls_server(tmp_path):
    """An HTTPS receiver on 127.0.0.1 with a self-signed certificate for hooks.example.test;
    records the server name (SNI) each client asked for."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=hooks.example.test"]
        + ["-addext", "subjectAltName=DNS:hooks.example.test"],
        check=True,
        capture_output=True,
    )
    names: list[str] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(raw, server_side=True) as conn:
                    conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
            except (OSError, ssl.SSLError):
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    trusting = ssl.create_default_context(cafile=str(cert))
    yield listener.getsockname()[1], trusting, names
    listener.close()
    thread.join(5)


def test_https_to_the_checked_address_verifies_the_certificate_for_the_name(tls_server):
    port, trusting, names = tls_server

    def target(host):
        return outbound.Target("https", host, port, "/hook", ("127.0.0.1",))

    code = outbound.post(
        target("hooks.example.test"), b"{}", {}, deadline_seconds=5, max_response_bytes=8192,
        ssl_context=trusting,
    )  # fmt: skip
    with pytest.raises(outbound.CallFailed) as wrong_name:
        outbound.post(
            target("other.example.test"), b"{}", {}, deadline_seconds=5,
            max_response_bytes=8192, ssl_context=trusting,
        )  # fmt: skip

    assert code == 204
    assert names[0] == "hooks.example.test"  # SNI carries the name, not the address
    assert wrong_name.value.error_class == "tls_failed"


def test_a_refused_address_falls_through_to_the_next_checked_one():
    with Receiver() as receiver:  # on 127.0.0.1; nothing listens on 127.0.0.2 (loopback too)
        addresses = ("127.0.0.2", "127.0.0.1")
        target = outbound.Target("http", "hooks.example.test", receiver.port, "/hook", addresses)

        code = outbound.post(target, b"{}", {}, deadline_seconds=5, max_response_bytes=8192)

    assert code == 200 and len(receiver.requests) == 1
