"""Settling several holds (takes finishing together) with fewer statements on PostgreSQL.

`ledger_resolve_holds` runs, per take, a capture and a close (it succeeded) or a void and an extension of
its project's budget (it did not). `ledger_hold_steps` runs them as two operations per take, each locking,
reading, deciding and writing on its own: some thirty statements per take, while the team's ledger lock
is held and the team's next settlements wait. It is the one serial step of the generation queue.

`ledger_hold_settle` checks the whole batch first and then writes each take in one statement, when the
result is sure to be what the operations one by one write: none of the keys has an outcome yet; each
take's hold is pending, keeps exactly what is settled and reserves it from one lot, the same lot for all;
every budget taking credits back is pending and none of them is a take's hold; and that lot is active and,
if credits go back, the first one a budget would take from (a void gives them back to it, the extension
takes them from it again). Then only the captures move the lot and the team's held balance, once at the
end. Anything else runs `ledger_hold_steps`, as before. tests/ledger/test_sql_parity.py holds both to the
Python bodies. (A single set-based statement for the whole batch was tried first: planning it cost more
than the statements it saved, for the few takes a batch has.)
"""

import importlib

from django.db import migrations

PostgresOnlySQL = importlib.import_module("ledger.migrations.0002_postgres_guards").PostgresOnlySQL

INSTALL = """
CREATE FUNCTION ledger_hold_settle(p_team bigint, p_now timestamptz, p_kinds text[], p_holds bigint[],
                                   p_keys text[], p_requests jsonb[], p_credits bigint[],
                                   p_references text[], p_groups int[])
RETURNS SETOF ledger_outcome LANGUAGE plpgsql AS $$
DECLARE
    n int := coalesce(array_length(p_kinds, 1), 0) / 2;
    v_available bigint;
    v_held bigint;
    v_available_balance bigint;
    v_held_balance bigint;
    v_usage bigint;
    v_lot bigint;
    v_lots bigint;
    v_lot_of bigint;
    v_reserved bigint;
    v_captured bigint := 0;
    v_voids boolean := false;
    v_hold bigint;
    v_budget bigint;
    v_credits bigint;
    v_txn bigint;
    v_txn2 bigint;
    v_h_credits bigint[] := '{}';
    v_h_captured bigint[] := '{}';
    v_h_released bigint[] := '{}';
    v_h_refunded bigint[] := '{}';
    v_h_reference text[] := '{}';
    h ledger_hold;
    b ledger_hold;
    result ledger_outcome;
BEGIN
    -- The shape ledger_resolve_holds sends: per take, (capture, close) of its hold, or (void of its
    -- hold, extension of another hold by as many), every key different.
    IF n = 0 OR coalesce(array_length(p_kinds, 1), 0) <> 2 * n
       OR EXISTS (SELECT 1 FROM generate_series(1, n) AS i WHERE NOT (
               (p_kinds[2 * i - 1] = 'capture' AND p_kinds[2 * i] = 'hold_close'
                AND p_holds[2 * i] = p_holds[2 * i - 1] AND p_credits[2 * i - 1] > 0)
            OR (p_kinds[2 * i - 1] = 'hold_void' AND p_kinds[2 * i] = 'hold_extend'
                AND p_holds[2 * i] <> p_holds[2 * i - 1] AND p_credits[2 * i] > 0)))
       OR (SELECT count(DISTINCT k) FROM unnest(p_keys) AS k) <> 2 * n
       OR (SELECT count(DISTINCT p_holds[2 * i - 1]) FROM generate_series(1, n) AS i) <> n
       OR EXISTS (SELECT 1 FROM generate_series(1, n) AS i, generate_series(1, n) AS j
                  WHERE p_kinds[2 * j] = 'hold_extend' AND p_holds[2 * j] = p_holds[2 * i - 1]) THEN
        RETURN QUERY SELECT * FROM ledger_hold_steps(p_team, p_now, p_kinds, p_holds, p_keys, p_requests,
                                                     p_credits, p_references, p_groups);
        RETURN;
    END IF;

    SELECT max(id) FILTER (WHERE kind = 'available'), max(id) FILTER (WHERE kind = 'held'),
           max(balance) FILTER (WHERE kind = 'available'), max(balance) FILTER (WHERE kind = 'held')
        INTO v_available, v_held, v_available_balance, v_held_balance
        FROM (SELECT id, kind, balance FROM ledger_account WHERE team_id = p_team ORDER BY id FOR UPDATE)
             AS locked;
    SELECT id INTO v_usage FROM ledger_account WHERE team_id IS NULL AND kind = 'usage';
    IF v_available IS NULL OR v_held IS NULL OR v_usage IS NULL
       OR EXISTS (SELECT 1 FROM ledger_operation WHERE key = ANY (p_keys)) THEN
        RETURN QUERY SELECT * FROM ledger_hold_steps(p_team, p_now, p_kinds, p_holds, p_keys, p_requests,
                                                     p_credits, p_references, p_groups);
        RETURN;
    END IF;

    -- Check every take before writing anything.
    FOR i IN 1..n LOOP
        v_hold := p_holds[2 * i - 1];
        v_credits := coalesce(p_credits[2 * i - 1], p_credits[2 * i]);
        SELECT * INTO h FROM ledger_hold WHERE id = v_hold;
        SELECT count(*), max(lot_id), sum(reserved) INTO v_lots, v_lot_of, v_reserved
            FROM ledger_holdlot WHERE hold_id = v_hold AND reserved > 0;
        IF h.id IS NULL OR h.team_id <> p_team OR h.status <> 'pending'
           OR h.credits - h.captured - h.released <> v_credits
           OR v_lots <> 1 OR v_reserved <> v_credits OR v_lot_of IS DISTINCT FROM coalesce(v_lot, v_lot_of) THEN
            v_lot := NULL;
            EXIT;
        END IF;
        v_lot := v_lot_of;
        v_h_credits := v_h_credits || h.credits;
        v_h_captured := v_h_captured || h.captured;
        v_h_released := v_h_released || h.released;
        v_h_refunded := v_h_refunded || h.refunded;
        v_h_reference := v_h_reference || h.reference::text;
        IF p_kinds[2 * i] = 'hold_extend' THEN
            v_voids := true;
            SELECT * INTO b FROM ledger_hold WHERE id = p_holds[2 * i];
            IF b.id IS NULL OR b.team_id <> p_team OR b.status <> 'pending' THEN
                v_lot := NULL;
                EXIT;
            END IF;
        END IF;
    END LOOP;
    IF v_lot IS NULL
       OR NOT EXISTS (SELECT 1 FROM ledger_lot WHERE id = v_lot AND status = 'active')
       -- Credits going back: the first lot an extension takes from, once the void gave them back to
       -- v_lot, is v_lot itself.
       OR (v_voids AND v_lot IS DISTINCT FROM (
           SELECT id FROM ledger_lot
           WHERE team_id = p_team AND status = 'active' AND (remaining > reserved OR id = v_lot)
             AND effective_at <= p_now AND (expires_at IS NULL OR expires_at > p_now)
           ORDER BY priority, expires_at IS NULL, expires_at, category <> 'promotional', created_at, id
           LIMIT 1)) THEN
        RETURN QUERY SELECT * FROM ledger_hold_steps(p_team, p_now, p_kinds, p_holds, p_keys, p_requests,
                                                     p_credits, p_references, p_groups);
        RETURN;
    END IF;

    result.status := 'done';
    result.replayed := false;
    FOR i IN 1..n LOOP
        v_hold := p_holds[2 * i - 1];
        v_credits := coalesce(p_credits[2 * i - 1], p_credits[2 * i]);
        IF p_kinds[2 * i - 1] = 'capture' THEN
            -- Capture (held -> usage) and close, as the two operations write them.
            WITH spent AS (
                UPDATE ledger_holdlot SET reserved = reserved - v_credits, captured = captured + v_credits
                WHERE hold_id = v_hold AND lot_id = v_lot
            ), posted AS (
                UPDATE ledger_hold SET captured = captured + v_credits, status = 'posted', resolved_at = p_now
                WHERE id = v_hold
            ), txn AS (
                INSERT INTO ledger_transaction (team_id, kind, key, reference, memo, actor_id, hold_id,
                                                lot_id, corrects_id, created_at)
                VALUES (p_team, 'capture', p_keys[2 * i - 1], p_references[2 * i - 1], '', NULL, v_hold,
                        NULL, NULL, p_now)
                RETURNING id
            ), legs AS (
                INSERT INTO ledger_entry (transaction_id, account_id, credits, balance_after)
                SELECT txn.id, v_held, -v_credits, v_held_balance - v_credits FROM txn
                UNION ALL
                SELECT txn.id, v_usage, v_credits, NULL FROM txn
            ), outcomes AS (
                INSERT INTO ledger_operation (key, kind, team_id, request, outcome, transaction_id, hold_id,
                                              lot_id, error_code, error_message, error_details, created_at)
                SELECT p_keys[2 * i - 1], 'capture', p_team, p_requests[2 * i - 1], 'done', txn.id, v_hold,
                       NULL::bigint, '', '', '{}'::jsonb, p_now FROM txn
                UNION ALL
                SELECT p_keys[2 * i], 'hold_close', p_team, p_requests[2 * i], 'done', NULL, v_hold,
                       NULL::bigint, '', '', '{}'::jsonb, p_now FROM txn
            )
            SELECT id INTO v_txn FROM txn;
            v_held_balance := v_held_balance - v_credits;
            v_captured := v_captured + v_credits;
            result.transaction_id := v_txn;
            result.hold_id := v_hold;
            result.hold_credits := v_h_credits[i];
            result.hold_captured := v_h_captured[i] + v_credits;
            result.hold_released := v_h_released[i];
            result.hold_refunded := v_h_refunded[i];
            result.hold_status := 'pending';
            result.hold_resolved_at := NULL;
            RETURN NEXT result;
            result.transaction_id := NULL;
            result.hold_status := 'posted';
            result.hold_resolved_at := p_now;
            RETURN NEXT result;
        ELSE
            -- Void (held -> available), then the budget's extension (available -> held) from the same lot.
            v_budget := p_holds[2 * i];
            UPDATE ledger_holdlot SET reserved = reserved - v_credits, released = released + v_credits
                WHERE hold_id = v_hold AND lot_id = v_lot;
            UPDATE ledger_hold SET released = released + v_credits, status = 'voided', resolved_at = p_now
                WHERE id = v_hold;
            INSERT INTO ledger_holdlot AS hl (hold_id, lot_id, reserved, captured, released, refunded)
                VALUES (v_budget, v_lot, v_credits, 0, 0, 0)
                ON CONFLICT (hold_id, lot_id) DO UPDATE SET reserved = hl.reserved + EXCLUDED.reserved;
            UPDATE ledger_hold SET credits = credits + v_credits WHERE id = v_budget RETURNING * INTO b;
            WITH txns AS (
                INSERT INTO ledger_transaction (team_id, kind, key, reference, memo, actor_id, hold_id,
                                                lot_id, corrects_id, created_at)
                SELECT p_team, t.kind, t.key, t.reference, '', NULL, t.hold, NULL, NULL, p_now
                FROM (VALUES (1, 'hold_void', p_keys[2 * i - 1], v_h_reference[i], v_hold),
                             (2, 'hold_extend', p_keys[2 * i], b.reference::text, v_budget))
                     AS t(n, kind, key, reference, hold)
                ORDER BY t.n
                RETURNING id, kind
            ), legs AS (
                INSERT INTO ledger_entry (transaction_id, account_id, credits, balance_after)
                SELECT txns.id, leg.account, leg.credits, leg.after
                FROM (VALUES (1, 'hold_void', v_held, -v_credits, v_held_balance - v_credits),
                             (2, 'hold_void', v_available, v_credits, v_available_balance + v_credits),
                             (3, 'hold_extend', v_available, -v_credits, v_available_balance),
                             (4, 'hold_extend', v_held, v_credits, v_held_balance))
                     AS leg(n, kind, account, credits, after)
                JOIN txns ON txns.kind = leg.kind
                ORDER BY leg.n
            ), outcomes AS (
                INSERT INTO ledger_operation (key, kind, team_id, request, outcome, transaction_id, hold_id,
                                              lot_id, error_code, error_message, error_details, created_at)
                SELECT o.key, o.kind, p_team, o.request, 'done', txns.id, o.hold, NULL, '', '', '{}'::jsonb,
                       p_now
                FROM (VALUES (1, 'hold_void', p_keys[2 * i - 1], p_requests[2 * i - 1], v_hold),
                             (2, 'hold_extend', p_keys[2 * i], p_requests[2 * i], v_budget))
                     AS o(n, kind, key, request, hold)
                JOIN txns ON txns.kind = o.kind
                ORDER BY o.n
            )
            SELECT max(id) FILTER (WHERE kind = 'hold_void'), max(id) FILTER (WHERE kind = 'hold_extend')
                INTO v_txn, v_txn2 FROM txns;
            result.transaction_id := v_txn;
            result.hold_id := v_hold;
            result.hold_credits := v_h_credits[i];
            result.hold_captured := v_h_captured[i];
            result.hold_released := v_h_released[i] + v_credits;
            result.hold_refunded := v_h_refunded[i];
            result.hold_status := 'voided';
            result.hold_resolved_at := p_now;
            RETURN NEXT result;
            result.transaction_id := v_txn2;
            result.hold_id := v_budget;
            result.hold_credits := b.credits;
            result.hold_captured := b.captured;
            result.hold_released := b.released;
            result.hold_refunded := b.refunded;
            result.hold_status := b.status;
            result.hold_resolved_at := b.resolved_at;
            RETURN NEXT result;
        END IF;
    END LOOP;
    -- What the captures took from the lot and the team's held credits (a void and its extension
    -- leave both as they were).
    IF v_captured > 0 THEN
        UPDATE ledger_lot SET reserved = reserved - v_captured, remaining = remaining - v_captured
            WHERE id = v_lot;
        UPDATE ledger_account SET balance = balance - v_captured WHERE id = v_held;
    END IF;
END $$;
"""

UNINSTALL = """
DROP FUNCTION IF EXISTS ledger_hold_settle(bigint, timestamptz, text[], bigint[], text[], jsonb[], bigint[],
                                           text[], int[]);
"""


class Migration(migrations.Migration):
    dependencies = [("ledger", "0008_ledger_hold_split_in_one_pass")]

    operations = [PostgresOnlySQL(INSTALL, UNINSTALL)]
