"""A split of a hold into new holds (a launch's takes out of its project's budget) in one pass on PostgreSQL.

`ledger_hold_split` is a release of each part from the hold, then a hold of as many, one part after the
other: `ledger_hold_steps` runs them as 2 × n operations, each locking, reading and writing on its own.
While it runs, the team's ledger lock is held, and every settlement of the team waits: a launch of 50
takes kept it for 100 operations.

`ledger_hold_split` (the function) writes the same rows in a few set-based statements when the result
is sure to be the same: none of the keys has an outcome yet, the hold is pending and keeps enough for
every part, and it reserves from a single active lot that is also the first lot a new hold would take
from. Then each part's release gives its credits back to that lot and its hold takes them from it again,
so the lot and the team's balances end as they began, and every row (transactions in the same order, their
legs and running balances, allocations, outcomes) is what the operations one by one write. Any other
case runs `ledger_hold_steps`, as before. tests/ledger/test_sql_parity.py holds both to the Python bodies.
"""

import importlib

from django.db import migrations

PostgresOnlySQL = importlib.import_module("ledger.migrations.0002_postgres_guards").PostgresOnlySQL

INSTALL = """
CREATE FUNCTION ledger_hold_split(p_team bigint, p_now timestamptz, p_kinds text[], p_holds bigint[],
                                  p_keys text[], p_requests jsonb[], p_credits bigint[], p_references text[],
                                  p_groups int[])
RETURNS SETOF ledger_outcome LANGUAGE plpgsql AS $$
DECLARE
    n int := coalesce(array_length(p_kinds, 1), 0) / 2;
    v_hold bigint := p_holds[1];
    v_available bigint;
    v_held bigint;
    v_available_balance bigint;
    v_held_balance bigint;
    v_lot bigint;
    v_lots int;
    v_total bigint;
    h ledger_hold;
BEGIN
    -- The shape ledger_hold_split sends: (release from the hold, hold) per part, same credits and
    -- reference in both, every key different.
    IF n = 0 OR coalesce(array_length(p_kinds, 1), 0) <> 2 * n OR EXISTS (
        SELECT 1 FROM generate_series(1, n) AS i
        WHERE p_kinds[2 * i - 1] <> 'release' OR p_kinds[2 * i] <> 'hold'
           OR p_holds[2 * i - 1] IS DISTINCT FROM v_hold OR p_holds[2 * i] IS NOT NULL
           OR p_credits[2 * i - 1] IS DISTINCT FROM p_credits[2 * i] OR p_credits[2 * i] <= 0
           OR p_references[2 * i - 1] IS DISTINCT FROM p_references[2 * i]
    ) OR (SELECT count(DISTINCT k) FROM unnest(p_keys) AS k) <> 2 * n THEN
        RETURN QUERY SELECT * FROM ledger_hold_steps(p_team, p_now, p_kinds, p_holds, p_keys, p_requests,
                                                     p_credits, p_references, p_groups);
        RETURN;
    END IF;

    SELECT max(id) FILTER (WHERE kind = 'available'), max(id) FILTER (WHERE kind = 'held'),
           max(balance) FILTER (WHERE kind = 'available'), max(balance) FILTER (WHERE kind = 'held')
        INTO v_available, v_held, v_available_balance, v_held_balance
        FROM (SELECT id, kind, balance FROM ledger_account WHERE team_id = p_team ORDER BY id FOR UPDATE)
             AS locked;
    SELECT * INTO h FROM ledger_hold WHERE id = v_hold;
    SELECT sum(c) INTO v_total FROM unnest(p_credits) AS c;
    v_total := v_total / 2;
    SELECT count(*), max(lot_id) INTO v_lots, v_lot FROM ledger_holdlot WHERE hold_id = v_hold AND reserved > 0;
    IF v_available IS NULL OR v_held IS NULL OR h.id IS NULL OR h.team_id <> p_team
       OR h.status <> 'pending' OR v_total > h.credits - h.captured - h.released OR v_lots <> 1
       OR EXISTS (SELECT 1 FROM ledger_operation WHERE key = ANY (p_keys))
       -- The first lot a hold takes from once the release is back in v_lot: v_lot itself.
       OR v_lot IS DISTINCT FROM (
           SELECT id FROM ledger_lot
           WHERE team_id = p_team AND status = 'active' AND (remaining > reserved OR id = v_lot)
             AND effective_at <= p_now AND (expires_at IS NULL OR expires_at > p_now)
           ORDER BY priority, expires_at IS NULL, expires_at, category <> 'promotional', created_at, id
           LIMIT 1) THEN
        RETURN QUERY SELECT * FROM ledger_hold_steps(p_team, p_now, p_kinds, p_holds, p_keys, p_requests,
                                                     p_credits, p_references, p_groups);
        RETURN;
    END IF;

    -- One statement: the parts in order, the new holds, the transactions (release, then hold, part after
    -- part: the order the operations one by one give them), their legs with the running balances they
    -- leave (each release moves the part from held to available, its hold moves it back, so the team's
    -- balances and the lot end as they began), the allocations and the outcomes.
    RETURN QUERY
    WITH parts AS (
        SELECT i, p_credits[2 * i] AS credits, p_references[2 * i] AS reference,
               p_keys[2 * i - 1] AS release_key, p_keys[2 * i] AS hold_key,
               p_requests[2 * i - 1] AS release_request, p_requests[2 * i] AS hold_request,
               (h.released + sum(p_credits[2 * i]) OVER (ORDER BY i))::bigint AS released
        FROM generate_series(1, n) AS i
    ), new_holds AS (
        INSERT INTO ledger_hold (team_id, credits, captured, released, refunded, status, reference, key,
                                 expires_at, created_at, resolved_at)
        SELECT p_team, credits, 0, 0, 0, 'pending', reference, hold_key, NULL, p_now, NULL
        FROM parts ORDER BY i
        RETURNING id, key
    ), placed AS (
        SELECT parts.*, new_holds.id AS new_hold FROM parts JOIN new_holds ON new_holds.key = parts.hold_key
    ), txns AS (
        INSERT INTO ledger_transaction (team_id, kind, key, reference, memo, actor_id, hold_id, lot_id,
                                        corrects_id, created_at)
        SELECT p_team, t.kind, t.key, p.reference, '', NULL, t.hold, NULL, NULL, p_now
        FROM placed AS p,
             LATERAL (VALUES (1, 'release', p.release_key, v_hold), (2, 'hold', p.hold_key, p.new_hold))
                 AS t(n, kind, key, hold)
        ORDER BY p.i, t.n
        RETURNING id, key
    ), posted AS (
        SELECT p.*, r.id AS release_txn, t.id AS hold_txn
        FROM placed AS p JOIN txns AS r ON r.key = p.release_key JOIN txns AS t ON t.key = p.hold_key
    ), legs AS (
        INSERT INTO ledger_entry (transaction_id, account_id, credits, balance_after)
        SELECT leg.txn, leg.account, leg.credits, leg.after
        FROM posted AS p,
             LATERAL (VALUES
                 (1, p.release_txn, v_held, -p.credits, v_held_balance - p.credits),
                 (2, p.release_txn, v_available, p.credits, v_available_balance + p.credits),
                 (3, p.hold_txn, v_available, -p.credits, v_available_balance),
                 (4, p.hold_txn, v_held, p.credits, v_held_balance)
             ) AS leg(n, txn, account, credits, after)
        ORDER BY p.i, leg.n
    ), allocations AS (
        INSERT INTO ledger_holdlot (hold_id, lot_id, reserved, captured, released, refunded)
        SELECT new_hold, v_lot, credits, 0, 0, 0 FROM placed ORDER BY i
    ), given_back AS (
        UPDATE ledger_holdlot SET reserved = reserved - v_total, released = released + v_total
        WHERE hold_id = v_hold AND lot_id = v_lot
    ), split AS (
        UPDATE ledger_hold SET released = released + v_total WHERE id = v_hold
    ), outcomes AS (
        INSERT INTO ledger_operation (key, kind, team_id, request, outcome, transaction_id, hold_id, lot_id,
                                      error_code, error_message, error_details, created_at)
        SELECT o.key, o.kind, p_team, o.request, 'done', o.txn, o.hold, NULL, '', '', '{}'::jsonb, p_now
        FROM posted AS p,
             LATERAL (VALUES
                 (1, p.release_key, 'release', p.release_request, p.release_txn, v_hold),
                 (2, p.hold_key, 'hold', p.hold_request, p.hold_txn, p.new_hold)
             ) AS o(n, key, kind, request, txn, hold)
        ORDER BY p.i, o.n
    )
    -- What each operation returns: a release, the hold as it left it; a hold, the new hold.
    SELECT 'done'::text, false, r.txn, r.hold, NULL::text, NULL::jsonb, r.credits, r.captured, r.released,
           r.refunded, r.status::text, r.resolved_at
    FROM posted AS p,
         LATERAL (VALUES
             (1, p.release_txn, v_hold, h.credits, h.captured, p.released, h.refunded, h.status,
              h.resolved_at),
             (2, p.hold_txn, p.new_hold, NULL, NULL, NULL, NULL, NULL, NULL)
         ) AS r(n, txn, hold, credits, captured, released, refunded, status, resolved_at)
    ORDER BY p.i, r.n;
END $$;
"""

UNINSTALL = """
DROP FUNCTION IF EXISTS ledger_hold_split(bigint, timestamptz, text[], bigint[], text[], jsonb[], bigint[],
                                          text[], int[]);
"""


class Migration(migrations.Migration):
    dependencies = [("ledger", "0007_ledger_fewer_writes_per_posting")]

    operations = [PostgresOnlySQL(INSTALL, UNINSTALL)]
