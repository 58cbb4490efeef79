"""A settlement's move of its jobs out of `running`, as a function on PostgreSQL that can refuse a batch.

A settlement on PostgreSQL sends its statements in one pipeline outside a transaction block, so they run as
one transaction that the pipeline's single sync commits: no BEGIN and no COMMIT round trip while the
team's ledger lock is held. Nothing can be undone after the replies come back, so the check that every job
of the batch was still running (none settled meanwhile by another delivery of its task) happens in the
server: `planner_job_finish` with `p_all` raises SQLSTATE KJ001 when it moved fewer jobs than it was given,
and the whole transaction, ledger call included, rolls back.
"""

import importlib

from django.db import migrations

PostgresOnlySQL = importlib.import_module("ledger.migrations.0002_postgres_guards").PostgresOnlySQL

INSTALL = """
CREATE FUNCTION planner_job_finish(p_now timestamptz, p_ids bigint[], p_states text[], p_all boolean)
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
DECLARE
    moved int;
BEGIN
    RETURN QUERY
        UPDATE planner_job AS j SET state = s.state, finished_at = p_now, lease_expires_at = NULL
        FROM unnest(p_ids, p_states) AS s(id, state)
        WHERE j.id = s.id AND j.state = 'running'
        RETURNING j.id;
    GET DIAGNOSTICS moved = ROW_COUNT;
    IF p_all AND moved <> cardinality(p_ids) THEN
        RAISE EXCEPTION 'only % of the batch''s % jobs were still running', moved, cardinality(p_ids)
            USING ERRCODE = 'KJ001';
    END IF;
END $$;
"""

UNINSTALL = "DROP FUNCTION IF EXISTS planner_job_finish(timestamptz, bigint[], text[], boolean);"


class Migration(migrations.Migration):
    dependencies = [("planner", "0008_job_active_line_indexes")]

    operations = [PostgresOnlySQL(INSTALL, UNINSTALL)]
