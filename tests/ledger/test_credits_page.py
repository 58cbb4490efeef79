import re
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from keter.accounts.roles import Role
from ledger.forms import WHOLE_NUMBER
from ledger.models import Lot, Operation, Transaction
from ledger.services import ledger_capture, ledger_grant, ledger_hold, ledger_release

CAN_VIEW = [Role.OWNER, Role.FINANCE]
CANNOT_VIEW = [Role.LEAD, Role.PRODUCER, Role.VIEWER]


def url(team, name="ledger:credits"):
    return reverse(name, args=[team.slug])


def token() -> str:
    return str(uuid.uuid4())


def ledger_rows() -> tuple[int, int, int]:
    return Lot.objects.count(), Transaction.objects.count(), Operation.objects.count()


def field_error(html: str, field_id: str) -> str:
    """The message shown right under the input with this id."""
    match = re.search(
        rf'id="{field_id}".*?<p class="field-error" id="{field_id}_error">(.*?)</p>', html, re.S
    )
    assert match, f"no error under #{field_id}"
    return match.group(1)


@pytest.fixture
def funded(demo):
    ledger_grant(team=demo, credits=2_250, key="grant:page:1", reference="plan:pro:2026-11")
    return demo


@pytest.mark.parametrize("role", CAN_VIEW)
def test_owner_and_finance_see_the_balance_lots_and_transactions(client_as, funded, role):
    held = ledger_hold(team=funded, credits=500, key="hold:approval:1", reference="approval:1")
    ledger_capture(hold=held, credits=120, key="capture:job:1", reference="job:1")
    page = client_as(role).get(url(funded))
    assert page.status_code == 200
    html = page.content.decode()
    assert '<p class="stat-value" id="balance-available">1,750</p>' in html
    assert '<p class="stat-value" id="balance-held">380</p>' in html
    assert '<p class="stat-value" id="balance-spent">120</p>' in html
    assert "<code>job:1</code>" in html and "<code>approval:1</code>" in html
    assert "Top up" in html and "Record adjustment" in html
    # The lot, with what is left of it and what the open hold keeps.
    lot = Lot.objects.get(team=funded)
    lot_row = re.search(rf"<td>#{lot.pk}<br>.*?</tr>", html, re.S).group(0)
    cells = re.findall(r'<td class="num">([^<]*)</td>', lot_row)
    assert cells[1:] == ["2,250", "2,130", "380"]  # credits, remaining, reserved


def test_the_held_figure_counts_every_open_hold_not_only_those_listed(client_as, funded):
    for n in range(23):
        ledger_hold(team=funded, credits=1, key=f"hold:approval:{n}", reference=f"approval:{n}")
    html = client_as(Role.FINANCE).get(url(funded)).content.decode()
    assert "reserved by 23 open holds" in html
    assert html.count("<td>approval:") == 20  # the table lists the newest 20


@pytest.mark.parametrize("role", CANNOT_VIEW)
def test_other_roles_may_not_see_the_credits(client_as, demo, role):
    assert client_as(role).get(url(demo)).status_code == 403


def test_another_teams_credits_are_not_found(client_as, demo, other_team):
    assert client_as(Role.OWNER).get(url(other_team)).status_code == 404
    response = client_as(Role.FINANCE).post(
        url(other_team, "ledger:top-up"), {"credits": "1000", "request_token": token()}
    )
    assert response.status_code == 404
    assert not Lot.objects.exists()


def test_anonymous_visitors_are_sent_to_sign_in(client, demo):
    response = client.get(url(demo))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


@pytest.mark.parametrize("role", CANNOT_VIEW)
@pytest.mark.parametrize("action", ["ledger:top-up", "ledger:grant", "ledger:adjust"])
def test_other_roles_may_not_move_credits(client_as, demo, role, action):
    data = {"credits": "1000", "reason": "why", "request_token": token()}
    assert client_as(role).post(url(demo, action), data).status_code == 403
    assert ledger_rows() == (0, 0, 0)


@pytest.mark.parametrize("role", CAN_VIEW)
def test_finance_and_owner_top_up_and_see_it_confirmed(client_as, demo, member, role):
    client = client_as(role)
    response = client.post(
        url(demo, "ledger:top-up"),
        {"credits": "5,000", "reference": "INV-7", "request_token": token()},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == url(demo)
    assert "Added 5,000 purchased credits" in response.content.decode()
    lot = Lot.objects.get()
    assert (lot.category, lot.credits, lot.reference, lot.actor) == (
        "paid",
        5_000,
        "INV-7",
        member(role).user,
    )


def test_a_double_submitted_top_up_buys_once(client_as, demo):
    client = client_as(Role.FINANCE)
    data = {"credits": "1000", "request_token": token()}
    client.post(url(demo, "ledger:top-up"), data)
    client.post(url(demo, "ledger:top-up"), data)
    assert Lot.objects.count() == 1


BAD_CREDITS = [
    ("0", "Enter credits above zero"),
    ("-50", "Enter credits above zero"),
    ("abc", WHOLE_NUMBER),
    ("12.5", WHOLE_NUMBER),
    ("", "Enter a number of credits"),
    ("1000000000000", "At most 10,000,000 credits at a time"),
    ("9" * 5000, "At most 10,000,000 credits at a time"),
]


@pytest.mark.parametrize(("typed", "message"), BAD_CREDITS)
@pytest.mark.parametrize("action", ["top-up", "grant"])
def test_bad_credits_get_a_message_next_to_the_field_and_write_nothing(
    client_as, funded, action, typed, message
):
    before = ledger_rows()
    response = client_as(Role.FINANCE).post(
        url(funded, f"ledger:{action}"), {"credits": typed, "request_token": token()}
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert field_error(html, f"{action}-credits") == message
    if typed and len(typed) < 30:
        assert f'value="{typed}"' in html  # what was typed is kept
    assert ledger_rows() == before


def test_a_top_up_below_a_pack_is_refused(client_as, demo):
    response = client_as(Role.FINANCE).post(
        url(demo, "ledger:top-up"), {"credits": "999", "request_token": token()}
    )
    assert response.status_code == 422
    assert (
        field_error(response.content.decode(), "top-up-credits")
        == "Credits are bought in packs of at least 1,000"
    )
    assert ledger_rows() == (0, 0, 0)


def test_a_grant_may_expire_but_not_in_the_past(client_as, demo):
    client = client_as(Role.FINANCE)
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    refused = client.post(
        url(demo, "ledger:grant"), {"credits": "300", "expires_on": yesterday, "request_token": token()}
    )
    assert refused.status_code == 422
    assert field_error(refused.content.decode(), "grant-expires_on") == "Choose a date after today"
    assert f'value="{yesterday}"' in refused.content.decode()
    assert ledger_rows() == (0, 0, 0)
    next_month = (timezone.localdate() + timedelta(days=30)).isoformat()
    client.post(
        url(demo, "ledger:grant"),
        {"credits": "300", "expires_on": next_month, "memo": "Launch", "request_token": token()},
    )
    lot = Lot.objects.get()
    assert (lot.category, lot.memo, lot.expires_at.date().isoformat()) == (
        "promotional",
        "Launch",
        next_month,
    )


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("0", "Enter a number of credits other than zero"),
        ("abc", WHOLE_NUMBER),
        ("12.5", WHOLE_NUMBER),
        ("-1000000000000", "At most 10,000,000 credits at a time"),
        ("1000000000000", "At most 10,000,000 credits at a time"),
    ],
)
def test_a_bad_adjustment_gets_a_message_and_writes_nothing(client_as, funded, typed, message):
    before = ledger_rows()
    response = client_as(Role.OWNER).post(
        url(funded, "ledger:adjust"), {"credits": typed, "reason": "Fix", "request_token": token()}
    )
    assert response.status_code == 422
    assert field_error(response.content.decode(), "adjust-credits") == message
    assert ledger_rows() == before


def test_an_adjustment_needs_a_reason(client_as, funded):
    before = ledger_rows()
    response = client_as(Role.FINANCE).post(
        url(funded, "ledger:adjust"), {"credits": "-100", "reason": "   ", "request_token": token()}
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert field_error(html, "adjust-reason") == "Say why: an adjustment needs a reason"
    assert 'value="-100"' in html
    assert ledger_rows() == before


def test_an_adjustment_beyond_the_available_credits_is_refused_and_can_then_be_corrected(
    client_as, funded, member
):
    client = client_as(Role.FINANCE)
    lots_and_transactions = ledger_rows()[:2]
    first_token = token()
    refused = client.post(
        url(funded, "ledger:adjust"),
        {"credits": "-3000", "reason": "Duplicate grant", "request_token": first_token},
    )
    assert refused.status_code == 422
    html = refused.content.decode()
    assert field_error(html, "adjust-credits") == "Not enough credits: 2,250 available, 3,000 needed"
    assert ledger_rows()[:2] == lots_and_transactions
    assert first_token not in html  # the refused request keeps its answer; the corrected one is new
    new_token = re.search(r'name="request_token" value="([0-9a-f-]+)" id="adjust-request_token"', html).group(
        1
    )
    client.post(
        url(funded, "ledger:adjust"),
        {"credits": "-250", "reason": "Duplicate grant", "request_token": new_token},
    )
    txn = Transaction.objects.get(kind="adjust")
    assert (txn.memo, txn.actor, txn.available_change) == ("Duplicate grant", member(Role.FINANCE).user, -250)


def test_a_form_without_its_token_asks_for_a_reload(client_as, demo):
    response = client_as(Role.FINANCE).post(url(demo, "ledger:top-up"), {"credits": "1000"})
    assert response.status_code == 422
    assert "This form is out of date: reload the page and try again" in response.content.decode()
    assert ledger_rows() == (0, 0, 0)


@pytest.fixture
def history(funded):
    held = ledger_hold(team=funded, credits=900, key="hold:approval:5", reference="approval:5")
    for n in range(1, 31):
        ledger_capture(hold=held, credits=10, key=f"capture:job:{n}", reference=f"job:{n}")
    ledger_release(hold=held, credits=50, key="release:job:99", reference="job:99")
    return funded


def test_the_transactions_are_paginated_newest_first(client_as, history):
    client = client_as(Role.FINANCE)
    first = client.get(url(history)).content.decode()
    assert "33 transactions · page 1 of 2" in first
    assert first.index("<code>job:99</code>") < first.index("<code>job:30</code>")
    second = client.get(url(history) + "?page=2").content.decode()
    assert "<code>approval:5</code>" in second and "<code>job:99</code>" not in second
    assert client.get(url(history) + "?page=banana").status_code == 200


def test_the_transactions_filter_by_kind_reference_and_dates(client_as, history):
    client = client_as(Role.FINANCE)
    releases = client.get(url(history), {"kind": "release"}).content.decode()
    assert "<code>job:99</code>" in releases and "<code>job:1</code>" not in releases
    by_reference = client.get(url(history), {"q": "job:2"}).content.decode()
    assert "11 transactions" in by_reference  # job:2 and job:20..29
    today = timezone.localdate()
    assert (
        "33 transactions" in client.get(url(history), {"date_from": today, "date_to": today}).content.decode()
    )
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert "No transactions match" in client.get(url(history), {"date_from": tomorrow}).content.decode()


def test_a_bad_filter_date_is_explained_and_ignored(client_as, history):
    response = client_as(Role.FINANCE).get(url(history), {"date_from": "31/02/2026", "kind": "release"})
    assert response.status_code == 422
    html = response.content.decode()
    assert "Enter a date like 2026-12-31" in html
    assert 'value="31/02/2026"' in html
    assert "1 transaction" in html  # the valid filter still applies


def test_a_filter_with_htmx_returns_only_the_transactions(client_as, history):
    response = client_as(Role.FINANCE).get(url(history), {"kind": "release"}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="transactions">')
    assert "<code>job:99</code>" in html


def test_the_navigation_links_the_credits_page_for_finance(client_as, demo):
    html = client_as(Role.FINANCE).get(reverse("planner:dashboard", args=[demo.slug])).content.decode()
    assert f'href="{url(demo)}"' in html
