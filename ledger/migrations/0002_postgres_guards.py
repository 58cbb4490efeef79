"""PostgreSQL itself refuses what the services never do: unbalanced transactions, edited or deleted entries.

- A deferred constraint trigger checks, at COMMIT, that every transaction written has at least two
  entries and that they sum to zero (checked from both tables, so an entry added later to an old
  transaction is caught too).
- Row triggers refuse UPDATE and DELETE on entries and transactions: corrections are new transactions.
  (TRUNCATE, which only a test flush or an operator runs, is not a row operation and stays possible.)

SQLite has no deferred triggers; there the services and `ledger_check` are the guard.
"""

from django.db import migrations

INSTALL = """
CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger % rows are append-only: % refused (post a correcting transaction instead)',
        TG_TABLE_NAME, TG_OP USING ERRCODE = 'restrict_violation';
END $$;

CREATE TRIGGER ledger_entry_append_only BEFORE UPDATE OR DELETE ON ledger_entry
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_transaction_append_only BEFORE UPDATE OR DELETE ON ledger_transaction
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

CREATE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    txn bigint;
    total numeric;
    legs integer;
BEGIN
    IF TG_TABLE_NAME = 'ledger_entry' THEN txn := NEW.transaction_id; ELSE txn := NEW.id; END IF;
    SELECT coalesce(sum(credits), 0), count(*) INTO total, legs FROM ledger_entry WHERE transaction_id = txn;
    IF legs < 2 OR total <> 0 THEN
        RAISE EXCEPTION 'ledger transaction % does not balance: % entries summing to %', txn, legs, total
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER ledger_transaction_balanced AFTER INSERT ON ledger_transaction
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced();
CREATE CONSTRAINT TRIGGER ledger_entry_balanced AFTER INSERT ON ledger_entry
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced();
"""

UNINSTALL = """
DROP TRIGGER IF EXISTS ledger_entry_balanced ON ledger_entry;
DROP TRIGGER IF EXISTS ledger_transaction_balanced ON ledger_transaction;
DROP FUNCTION IF EXISTS ledger_check_balanced();
DROP TRIGGER IF EXISTS ledger_transaction_append_only ON ledger_transaction;
DROP TRIGGER IF EXISTS ledger_entry_append_only ON ledger_entry;
DROP FUNCTION IF EXISTS ledger_refuse_change();
"""


class PostgresOnlySQL(migrations.RunSQL):
    """RunSQL that runs only on PostgreSQL (guarded by the connection's vendor)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [PostgresOnlySQL(INSTALL, UNINSTALL)]
