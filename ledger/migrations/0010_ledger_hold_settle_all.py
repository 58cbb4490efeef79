"""`ledger_hold_settle_all`: the settlement of several holds for a caller that commits without reading the
outcomes first.

`ledger_hold_settle` reports a refused or conflicting operation as an outcome row, and the service raises
it once it has read the rows, inside the transaction that is then rolled back. A caller that sends its
statements as one implicit transaction (one pipeline, one sync, outside a transaction block) has it
committed before any row is read. This form fails the statement itself, SQLSTATE KL001, when any
operation's outcome is not done: the whole transaction rolls back and the caller settles the careful way,
where the refusal is raised as its own error.
"""

import importlib

from django.db import migrations

PostgresOnlySQL = importlib.import_module("ledger.migrations.0002_postgres_guards").PostgresOnlySQL

INSTALL = """
CREATE FUNCTION ledger_hold_settle_all(p_team bigint, p_now timestamptz, p_kinds text[], p_holds bigint[],
                                       p_keys text[], p_requests jsonb[], p_credits bigint[],
                                       p_references text[], p_groups int[])
RETURNS SETOF ledger_outcome LANGUAGE plpgsql AS $$
DECLARE
    outcome ledger_outcome;
BEGIN
    FOR outcome IN
        SELECT * FROM ledger_hold_settle(p_team, p_now, p_kinds, p_holds, p_keys, p_requests, p_credits,
                                         p_references, p_groups)
    LOOP
        IF outcome.status <> 'done' THEN
            RAISE EXCEPTION 'a ledger operation was %: % %', outcome.status,
                coalesce(outcome.error_code, ''), coalesce(outcome.error_details::text, '')
                USING ERRCODE = 'KL001';
        END IF;
        RETURN NEXT outcome;
    END LOOP;
END $$;
"""

UNINSTALL = """
DROP FUNCTION IF EXISTS ledger_hold_settle_all(bigint, timestamptz, text[], bigint[], text[], jsonb[],
                                               bigint[], text[], int[]);
"""


class Migration(migrations.Migration):
    dependencies = [("ledger", "0009_ledger_hold_settle_lean")]

    operations = [PostgresOnlySQL(INSTALL, UNINSTALL)]
