"""The audit log is append-only, read-only in admin, and readable over the API (read scope,
filterable, paginated); a change that rolls back leaves no "ok" entry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from audit.context import audit_context
from audit.models import AuditEntry, AuditLogIsAppendOnly
from audit.services import audit_record
from trading import services
from trading.models import KillSwitch

pytestmark = pytest.mark.django_db

URL = "/api/v1/audit"


def record(action: str = "trading.halt", *, actor="system", via="system", **fields) -> AuditEntry:
    with audit_context(actor=actor, via=via):
        return audit_record(action=action, **fields)


# --- append-only -------------------------------------------------------------------------------


def test_an_entry_cannot_be_changed_or_deleted(db):
    entry = record(target="kill_switch", details={"reason": "x"})
    entry.actor = "someone else"
    with pytest.raises(AuditLogIsAppendOnly):
        entry.save()
    with pytest.raises(AuditLogIsAppendOnly):
        entry.delete()
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEntry.objects.filter(pk=entry.pk).update(actor="someone else")
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEntry.objects.all().delete()
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEntry.objects.bulk_update([entry], ["actor"])
    assert AuditEntry.objects.get(pk=entry.pk).actor == "system"


def test_deleting_a_user_keeps_their_entries_with_their_name(db):
    user = User.objects.create_user("gone")
    with audit_context(actor="gone", via="admin", user_id=user.pk):
        entry = audit_record(action="trading.resume")
    user.delete()
    entry = AuditEntry.objects.get(pk=entry.pk)
    assert (entry.actor, entry.user_id) == ("gone", None)


def test_secrets_in_details_are_never_stored(db):
    entry = record(details={"password": "hunter2", "api_key": "abc", "symbol": "SPY"})
    assert AuditEntry.objects.get(pk=entry.pk).details == {"symbol": "SPY"}


def test_admin_lists_entries_and_can_neither_add_change_nor_delete(db, admin_client):
    entry = record(target="kill_switch")
    listing = admin_client.get("/admin/audit/auditentry/?via=system&q=kill")
    assert listing.status_code == 200 and "kill_switch" in listing.content.decode()
    assert admin_client.get("/admin/audit/auditentry/?at__year=2000").status_code == 200
    assert admin_client.get("/admin/audit/auditentry/add/").status_code == 403
    assert admin_client.get(f"/admin/audit/auditentry/{entry.pk}/delete/").status_code == 403
    # The change page only shows (view permission): posting to it changes nothing.
    detail = admin_client.get(f"/admin/audit/auditentry/{entry.pk}/change/")
    assert detail.status_code == 200 and "Save" not in detail.content.decode()
    admin_client.post(f"/admin/audit/auditentry/{entry.pk}/change/", {"actor": "x"})
    bulk = admin_client.post(
        "/admin/audit/auditentry/", {"action": "delete_selected", "_selected_action": [entry.pk]}
    )
    assert bulk.status_code in (200, 302)
    assert AuditEntry.objects.get(pk=entry.pk).actor == "system"


# --- transactions ------------------------------------------------------------------------------


def test_a_change_that_rolls_back_takes_its_entry_with_it(db):
    with pytest.raises(RuntimeError), transaction.atomic():
        services.trading_halt(reason="oops")
        raise RuntimeError("the caller's transaction fails after the halt")
    assert not KillSwitch.objects.filter(engaged=True).exists()
    assert not AuditEntry.objects.exists()


# --- API ---------------------------------------------------------------------------------------


def test_reading_needs_read_scope(db, anonymous, reader):
    from trading.models import ApiKey

    record()
    assert anonymous.get(URL).status_code == 401
    revoked_key, raw = ApiKey.objects.create_key(name="old", scope="read")
    ApiKey.objects.filter(pk=revoked_key.pk).update(revoked=True)
    assert APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}").get(URL).status_code == 401
    # Any scope reads (read is the least a key or a logged-in user has); nothing writes.
    response = reader.get(URL)
    assert response.status_code == 200
    assert response.json()["count"] == AuditEntry.objects.count() == 3
    assert reader.post(URL, {}, format="json").status_code == 405
    assert reader.get("/wp-json/tradingrobotplug/v1/audit").json()["count"] == 3


def test_the_api_lists_newest_first_with_every_field(ready, trader, reader):
    trader.post("/api/v1/stop_trading", {"reason": "news"}, format="json")
    body = reader.get(URL).json()
    newest = body["results"][0]
    assert newest["action"] == "trading.halt"
    assert set(newest) == {
        "id",
        "at",
        "actor",
        "user",
        "via",
        "action",
        "target",
        "details",
        "outcome",
        "code",
    }
    assert (newest["actor"], newest["via"], newest["outcome"]) == ("key:trader", "api", "ok")
    assert newest["details"]["reason"] == "news"


def test_filters(db, reader):
    record("order.submit", actor="key:a", via="api", outcome="refused", code="trading_halted")
    record("order.cancel", actor="key:a", via="api")
    record("trading.halt", actor="admin", via="admin")
    record("trading.resume")
    # An entry cannot be moved in time once written: write one dated ten days ago.
    ancient = AuditEntry(at=timezone.now() - timedelta(days=10), actor="system", via="system")
    ancient.action = "session.start"
    ancient.save()

    def actions(query: str) -> list[str]:
        response = reader.get(f"{URL}?{query}")
        assert response.status_code == 200, response.content
        return sorted(r["action"] for r in response.json()["results"])

    assert actions("action=order.submit") == ["order.submit"]
    assert actions("action=order.") == ["order.cancel", "order.submit"]
    assert actions("via=admin") == ["trading.halt"]
    # The reader's key was created outside a request: by the system.
    assert actions("via=admin,system") == [
        "key.create",
        "session.start",
        "trading.halt",
        "trading.resume",
    ]
    assert actions("actor=key:a") == ["order.cancel", "order.submit"]
    assert actions("outcome=refused") == ["order.submit"]
    since = (timezone.now() - timedelta(days=1)).date().isoformat()
    assert "session.start" not in actions(f"since={since}")
    assert actions(f"until={since}") == ["session.start"]
    assert actions("via=api&outcome=ok") == ["order.cancel"]


@pytest.mark.parametrize(
    "query",
    [
        "via=email",
        "outcome=maybe",
        "action=DROP TABLE",
        "action=" + "a" * 65,
        "actor=",
        "actor=" + "x" * 151,
        "since=yesterday",
        "until=2024-13-45",
        "limit=0",
        "offset=-1",
        "ordering=password",
    ],
)
def test_a_bad_filter_is_a_400(db, reader, query):
    response = reader.get(f"{URL}?{query}")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"]


def test_pagination(db, reader):
    for number in range(7):
        record(target=f"t{number}")
    first = reader.get(f"{URL}?action=trading.halt&limit=3").json()
    assert first["count"] == 7 and len(first["results"]) == 3
    assert [r["target"] for r in first["results"]] == ["t6", "t5", "t4"]
    second = reader.get(first["next"]).json()
    assert [r["target"] for r in second["results"]] == ["t3", "t2", "t1"]
    assert reader.get(f"{URL}?action=trading.halt&limit=3&offset=6").json()["next"] is None


def test_a_logged_in_user_reads_the_log(db):
    user = User.objects.create_user("auditor")
    client = APIClient()
    client.force_login(user)
    record()
    assert client.get(URL).json()["results"][0]["action"] == "trading.halt"


def test_text_a_database_would_refuse_never_fails_the_change(db):
    entry = record(
        target="a\x00b",
        details={"reason": "nul\x00 and lone \ud800 surrogate", "ratio": float("nan"), "n": 1.5},
    )
    stored = AuditEntry.objects.get(pk=entry.pk)
    assert stored.target == "ab"
    assert stored.details == {"reason": "nul and lone ? surrogate", "ratio": "nan", "n": 1.5}
