"""Fewer writes per posting on PostgreSQL, the same guarantees.

- An entry's transaction is checked by the balance trigger instead of a foreign key: that trigger already
  reads the transaction's entries at commit for every entry written, and now also requires the
  transaction row itself (`foreign_key_violation` otherwise). Transactions are append-only (0002), so a
  transaction that was there at commit stays. One foreign-key check and one row lock fewer per entry.
- The time-out index holds only the holds a time-out can reach (pending, with an expiry): a take's or a
  budget's hold never expires, and no longer costs an index entry.
"""

import importlib

import django.db.models.deletion
from django.db import migrations, models

# The RunSQL that runs only on PostgreSQL, as 0002 defines it.
PostgresOnlySQL = importlib.import_module("ledger.migrations.0002_postgres_guards").PostgresOnlySQL


BALANCED_WITH_TRANSACTION = """
CREATE OR REPLACE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    txn bigint;
    total numeric;
    legs integer;
BEGIN
    IF TG_TABLE_NAME = 'ledger_entry' THEN
        txn := NEW.transaction_id;
        IF NOT EXISTS (SELECT 1 FROM ledger_transaction WHERE id = txn) THEN
            RAISE EXCEPTION 'ledger entry % belongs to no transaction (%)', NEW.id, txn
                USING ERRCODE = 'foreign_key_violation';
        END IF;
    ELSE
        txn := NEW.id;
    END IF;
    SELECT coalesce(sum(credits), 0), count(*) INTO total, legs FROM ledger_entry WHERE transaction_id = txn;
    IF legs < 2 OR total <> 0 THEN
        RAISE EXCEPTION 'ledger transaction % does not balance: % entries summing to %', txn, legs, total
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
"""


def _balanced_0002() -> str:
    """0002's definition of the balance check, as it installed it."""
    install = importlib.import_module("ledger.migrations.0002_postgres_guards").INSTALL
    start = install.index("CREATE FUNCTION ledger_check_balanced()")
    end = install.index("END $$;", start) + len("END $$;")
    return install[start:end].replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_team_low_balance_threshold"),
        ("ledger", "0006_ledger_hot_tables_fewer_fk_checks"),
    ]

    operations = [
        PostgresOnlySQL(BALANCED_WITH_TRANSACTION, _balanced_0002()),
        migrations.RemoveIndex(
            model_name="hold",
            name="ledger_hold_due",
        ),
        migrations.AlterField(
            model_name="entry",
            name="transaction",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="entries",
                to="ledger.transaction",
            ),
        ),
        migrations.AddIndex(
            model_name="hold",
            index=models.Index(
                condition=models.Q(("expires_at__isnull", False), ("status", "pending")),
                fields=["expires_at"],
                name="ledger_hold_due",
            ),
        ),
    ]
