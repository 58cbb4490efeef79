"""On PostgreSQL the database itself refuses what the services never do (migration 0002)."""

import pytest
from django.db import DatabaseError, connection, transaction

from ledger.models import Account, Entry, Transaction

pytestmark = pytest.mark.postgres


def sql(statement: str, params=()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


@pytest.fixture
def posted(team, grant):
    lot = grant(100)
    return Transaction.objects.get(lot=lot)


def test_it_refuses_an_unbalanced_entry_added_by_hand(posted, team):
    available = Account.objects.get(team=team, kind="available")
    with pytest.raises(DatabaseError, match="does not balance"), transaction.atomic():
        sql(
            "INSERT INTO ledger_entry (transaction_id, account_id, credits, balance_after) "
            "VALUES (%s, %s, 7, 107)",
            [posted.pk, available.pk],
        )
        sql("SET CONSTRAINTS ALL IMMEDIATE")  # what COMMIT does
    assert Entry.objects.filter(transaction=posted).count() == 2


def test_it_refuses_entries_of_a_transaction_that_does_not_exist(posted, team):
    """No foreign key holds an entry's transaction (0007): the balance trigger does, even for legs that
    balance each other."""
    available = Account.objects.get(team=team, kind="available")
    held = Account.objects.get(team=team, kind="held")
    with pytest.raises(DatabaseError, match="belongs to no transaction"), transaction.atomic():
        for account, credits in ((available, -5), (held, 5)):
            sql(
                "INSERT INTO ledger_entry (transaction_id, account_id, credits, balance_after) "
                "VALUES (%s, %s, %s, 0)",
                [posted.pk + 1000, account.pk, credits],
            )
        sql("SET CONSTRAINTS ALL IMMEDIATE")
    assert not Entry.objects.filter(transaction_id=posted.pk + 1000).exists()


def test_it_refuses_a_transaction_without_entries(team):
    with pytest.raises(DatabaseError, match="does not balance: 0 entries"), transaction.atomic():
        sql(
            "INSERT INTO ledger_transaction (team_id, kind, key, reference, memo, created_at) "
            "VALUES (%s, 'adjust', 'by-hand', '', '', now())",
            [team.pk],
        )
        sql("SET CONSTRAINTS ALL IMMEDIATE")


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_entry SET credits = credits + 1 WHERE transaction_id = %s",
        "DELETE FROM ledger_entry WHERE transaction_id = %s",
        "UPDATE ledger_transaction SET memo = 'edited' WHERE id = %s",
        "DELETE FROM ledger_transaction WHERE id = %s",
    ],
)
def test_it_refuses_to_change_or_delete_what_was_posted(posted, statement):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        sql(statement, [posted.pk])
    assert sorted(Entry.objects.filter(transaction=posted).values_list("credits", flat=True)) == [-100, 100]


def test_the_orm_cannot_edit_an_entry_either(posted):
    entry = Entry.objects.filter(transaction=posted).first()
    entry.credits = 1
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        entry.save()


@pytest.mark.django_db(transaction=True)
def test_a_commit_with_an_unbalanced_transaction_fails_as_a_whole(team, grant):
    grant(100)
    lots_before = Transaction.objects.count()
    available = Account.objects.get(team=team, kind="available")
    with pytest.raises(DatabaseError, match="does not balance"), transaction.atomic():
        txn = Transaction.objects.create(team=team, kind="adjust", key="by-hand")
        Entry.objects.create(transaction=txn, account=available, credits=5, balance_after=105)
    assert Transaction.objects.count() == lots_before
