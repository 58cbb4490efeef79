"""The hold and the capture, the two calls every take makes, do less work inside PostgreSQL.

Measured from inside the functions (auto_explain with nested statements) and with pgbench running them
(no Python), the work was CPU, not waiting for the disk: switching off synchronous commit changed
nothing. Most of it was PL/pgSQL calling itself: each operation called five helper functions (lock,
replay, pick lots, post, record), each a function call with a composite value built and taken apart,
and posted its legs one statement each in a loop. Here `ledger_hold_op` and the capture branch of
`ledger_hold_step` do the same things, in the same order, written inline:

- the team's two account rows are locked in id order in one statement (a locking subquery);
- the key is only probed; the stored outcome is read (by `ledger_replay`) only when it exists;
- everything a done hold or capture writes (the hold, the transaction, its legs' balances and entries
  in leg order, the allocations, the lots, the outcome under the key) is one statement of data-modifying
  CTEs: one executor run instead of seven.

Refusals, replays, the other hold operations and the SQLite bodies are unchanged; the parity test
(tests/ledger/test_sql_parity.py) still requires the same rows from the functions as from Python.
0004's definitions are restored on the way back.
"""

import importlib

from django.db import migrations

INSTALL = r"""
-- The team's two account rows, locked in id order in one statement; created on first use.
CREATE OR REPLACE FUNCTION ledger_hold_op(
    p_team bigint, p_key text, p_request jsonb, p_now timestamptz,
    p_credits bigint, p_reference text, p_expires_at timestamptz
) RETURNS ledger_outcome LANGUAGE plpgsql AS $$
DECLARE
    r record;
    acc record;
    result ledger_outcome;
    v_available bigint;
    v_held bigint;
    v_hold bigint;
    v_txn bigint;
    v_needed bigint := p_credits;
    v_take bigint;
    v_free bigint := 0;
    v_lots bigint[] := '{}';
    v_takes bigint[] := '{}';
BEGIN
    SELECT max(id) FILTER (WHERE kind = 'available'), max(id) FILTER (WHERE kind = 'held')
        INTO v_available, v_held
        FROM (SELECT id, kind FROM ledger_account WHERE team_id = p_team ORDER BY id FOR UPDATE) AS locked;
    IF v_available IS NULL OR v_held IS NULL THEN
        acc := ledger_lock_team(p_team);
        v_available := acc.available_id;
        v_held := acc.held_id;
    END IF;
    IF EXISTS (SELECT 1 FROM ledger_operation WHERE key = p_key) THEN
        RETURN ledger_replay(p_key, 'hold', p_team, p_request);
    END IF;

    -- The spendable lots' free credits, in burn order (as ledger_pick_lots).
    FOR r IN
        SELECT id, remaining - reserved AS free FROM ledger_lot
        WHERE team_id = p_team AND status = 'active' AND remaining > reserved AND effective_at <= p_now
          AND (expires_at IS NULL OR expires_at > p_now)
        ORDER BY priority, expires_at IS NULL, expires_at, category <> 'promotional', created_at, id
    LOOP
        v_free := v_free + r.free;
        v_take := least(r.free, v_needed);
        v_lots := v_lots || r.id;
        v_takes := v_takes || v_take;
        v_needed := v_needed - v_take;
        EXIT WHEN v_needed = 0;
    END LOOP;
    IF v_free < p_credits THEN
        result.status := 'refused';
        result.error_code := 'insufficient_credits';
        result.error_details := jsonb_build_object('available', v_free, 'needed', p_credits);
        RETURN ledger_record(p_key, 'hold', p_team, p_request, p_now, result);
    END IF;

    -- The hold, its transaction and legs, its allocations and its outcome: one statement.
    WITH new_hold AS (
        INSERT INTO ledger_hold (team_id, credits, captured, released, refunded, status, reference, key,
                                 expires_at, created_at, resolved_at)
        VALUES (p_team, p_credits, 0, 0, 0, 'pending', p_reference, p_key, p_expires_at, p_now, NULL)
        RETURNING id
    ), new_txn AS (
        INSERT INTO ledger_transaction (team_id, kind, key, reference, memo, actor_id, hold_id, lot_id,
                                        corrects_id, created_at)
        SELECT p_team, 'hold', p_key, p_reference, '', NULL, new_hold.id, NULL, NULL, p_now FROM new_hold
        RETURNING id, hold_id
    ), moved AS (
        UPDATE ledger_account AS a SET balance = a.balance + leg.credits
        FROM (VALUES (1, v_available, -p_credits), (2, v_held, p_credits)) AS leg(n, account, credits)
        WHERE a.id = leg.account
        RETURNING leg.n, a.id, leg.credits, a.balance
    ), legs AS (
        INSERT INTO ledger_entry (transaction_id, account_id, credits, balance_after)
        SELECT new_txn.id, moved.id, moved.credits, moved.balance FROM new_txn, moved ORDER BY moved.n
    ), allocations AS (
        INSERT INTO ledger_holdlot (hold_id, lot_id, reserved, captured, released, refunded)
        SELECT new_hold.id, u.lot, u.take, 0, 0, 0 FROM new_hold, unnest(v_lots, v_takes) AS u(lot, take)
    ), reserved AS (
        UPDATE ledger_lot SET reserved = reserved + u.take
        FROM unnest(v_lots, v_takes) AS u(lot, take) WHERE ledger_lot.id = u.lot
    ), outcome AS (
        INSERT INTO ledger_operation (key, kind, team_id, request, outcome, transaction_id, hold_id, lot_id,
                                      error_code, error_message, error_details, created_at)
        SELECT p_key, 'hold', p_team, p_request, 'done', new_txn.id, new_txn.hold_id, NULL, '', '',
               '{}'::jsonb, p_now
        FROM new_txn
    )
    SELECT id, hold_id INTO v_txn, v_hold FROM new_txn;
    result.status := 'done';
    result.replayed := false;
    result.transaction_id := v_txn;
    result.hold_id := v_hold;
    RETURN result;
END $$;

-- Every operation on an existing hold (see 0004); the capture, the hot one, is written inline.
CREATE OR REPLACE FUNCTION ledger_hold_step(
    p_kind text, p_team bigint, p_hold bigint, p_key text, p_request jsonb, p_now timestamptz,
    p_credits bigint, p_reference text
) RETURNS ledger_outcome LANGUAGE plpgsql AS $$
DECLARE
    acc record;
    picks record;
    a record;
    h ledger_hold;
    result ledger_outcome;
    v_available bigint;
    v_held bigint;
    v_open bigint;
    v_amount bigint;
    v_left bigint;
    v_take bigint;
    v_to_available bigint := 0;
    v_to_breakage bigint := 0;
BEGIN
    SELECT max(id) FILTER (WHERE kind = 'available'), max(id) FILTER (WHERE kind = 'held')
        INTO v_available, v_held
        FROM (SELECT id, kind FROM ledger_account WHERE team_id = p_team ORDER BY id FOR UPDATE) AS locked;
    IF v_available IS NULL OR v_held IS NULL THEN
        acc := ledger_lock_team(p_team);
        v_available := acc.available_id;
        v_held := acc.held_id;
    END IF;
    IF EXISTS (SELECT 1 FROM ledger_operation WHERE key = p_key) THEN
        RETURN ledger_replay(p_key, p_kind, p_team, p_request);
    END IF;
    SELECT * INTO STRICT h FROM ledger_hold WHERE id = p_hold;
    v_open := CASE WHEN h.status = 'pending' THEN h.credits - h.captured - h.released ELSE 0 END;

    IF h.status <> 'pending' THEN
        result.status := 'refused';
        result.error_code := 'hold_already_resolved';
        result.error_details := jsonb_build_object('hold_id', h.id, 'status', h.status);
    ELSIF p_kind IN ('capture', 'release') AND p_credits > v_open THEN
        result.status := 'refused';
        result.error_code := 'hold_exceeded';
        result.error_details := jsonb_build_object('hold_id', h.id, 'open_credits', v_open,
                                                   'requested', p_credits);

    ELSIF p_kind = 'capture' THEN
        -- Spend the hold's reservations in burn order: the soonest-expiring credits first.
        v_left := p_credits;
        FOR a IN
            SELECT hl.id, hl.lot_id, hl.reserved FROM ledger_holdlot hl JOIN ledger_lot l ON l.id = hl.lot_id
            WHERE hl.hold_id = p_hold AND hl.reserved > 0
            ORDER BY l.priority, l.expires_at IS NULL, l.expires_at, l.category <> 'promotional',
                     l.created_at, l.id
        LOOP
            v_take := least(a.reserved, v_left);
            UPDATE ledger_holdlot SET reserved = reserved - v_take, captured = captured + v_take WHERE id = a.id;
            UPDATE ledger_lot SET reserved = reserved - v_take, remaining = remaining - v_take WHERE id = a.lot_id;
            v_left := v_left - v_take;
            EXIT WHEN v_left = 0;
        END LOOP;
        h.captured := h.captured + p_credits;
        -- The hold's new total, the transaction and its legs (held → usage: the system's usage account
        -- keeps no balance), and the outcome: one statement.
        WITH captured AS (
            UPDATE ledger_hold SET captured = h.captured WHERE id = p_hold
        ), new_txn AS (
            INSERT INTO ledger_transaction (team_id, kind, key, reference, memo, actor_id, hold_id, lot_id,
                                            corrects_id, created_at)
            VALUES (p_team, 'capture', p_key, p_reference, '', NULL, p_hold, NULL, NULL, p_now)
            RETURNING id
        ), moved AS (
            UPDATE ledger_account SET balance = balance - p_credits WHERE id = v_held RETURNING balance
        ), legs AS (
            INSERT INTO ledger_entry (transaction_id, account_id, credits, balance_after)
            SELECT new_txn.id, v_held, -p_credits, moved.balance FROM new_txn, moved
            UNION ALL
            SELECT new_txn.id, usage.id, p_credits, NULL
            FROM new_txn, ledger_account AS usage WHERE usage.team_id IS NULL AND usage.kind = 'usage'
        ), outcome AS (
            INSERT INTO ledger_operation (key, kind, team_id, request, outcome, transaction_id, hold_id,
                                          lot_id, error_code, error_message, error_details, created_at)
            SELECT p_key, 'capture', p_team, p_request, 'done', new_txn.id, p_hold, NULL, '', '',
                   '{}'::jsonb, p_now
            FROM new_txn
        )
        SELECT id INTO result.transaction_id FROM new_txn;
        result.status := 'done';
        result.replayed := false;
        result.hold_id := p_hold;
        result.hold_credits := h.credits;
        result.hold_captured := h.captured;
        result.hold_released := h.released;
        result.hold_refunded := h.refunded;
        result.hold_status := h.status;
        result.hold_resolved_at := h.resolved_at;
        RETURN result;

    ELSIF p_kind = 'hold_extend' THEN
        picks := ledger_pick_lots(p_team, p_credits, p_now);
        IF picks.free < p_credits THEN
            result.status := 'refused';
            result.error_code := 'insufficient_credits';
            result.error_details := jsonb_build_object('available', picks.free, 'needed', p_credits);
        ELSE
            INSERT INTO ledger_holdlot AS hl (hold_id, lot_id, reserved, captured, released, refunded)
                SELECT p_hold, u.lot, u.take, 0, 0, 0 FROM unnest(picks.lot_ids, picks.takes) AS u(lot, take)
                ON CONFLICT (hold_id, lot_id) DO UPDATE SET reserved = hl.reserved + EXCLUDED.reserved;
            UPDATE ledger_lot SET reserved = reserved + u.take
                FROM unnest(picks.lot_ids, picks.takes) AS u(lot, take) WHERE ledger_lot.id = u.lot;
            UPDATE ledger_hold SET credits = credits + p_credits WHERE id = p_hold RETURNING * INTO h;
            result.transaction_id := ledger_post(p_team, 'hold_extend', p_key, h.reference, p_now, p_hold,
                v_available, v_held, ARRAY['available', 'held'], ARRAY[-p_credits, p_credits]);
        END IF;

    ELSE
        -- Release, or resolve (close, void, time out): give back what burns last first; what goes back
        -- to a lot that expired meanwhile is breakage.
        v_amount := CASE WHEN p_kind = 'release' THEN p_credits ELSE v_open END;
        IF v_amount > 0 THEN
            v_left := v_amount;
            FOR a IN
                SELECT hl.id, hl.lot_id, hl.reserved, l.status AS lot_status
                FROM ledger_holdlot hl JOIN ledger_lot l ON l.id = hl.lot_id
                WHERE hl.hold_id = p_hold AND hl.reserved > 0
                ORDER BY l.priority DESC, l.expires_at IS NULL DESC, l.expires_at DESC,
                         l.category <> 'promotional' DESC, l.created_at DESC, l.id DESC
            LOOP
                v_take := least(a.reserved, v_left);
                UPDATE ledger_holdlot SET reserved = reserved - v_take, released = released + v_take
                    WHERE id = a.id;
                IF a.lot_status = 'active' THEN
                    UPDATE ledger_lot SET reserved = reserved - v_take WHERE id = a.lot_id;
                    v_to_available := v_to_available + v_take;
                ELSE
                    UPDATE ledger_lot SET reserved = reserved - v_take, remaining = remaining - v_take
                        WHERE id = a.lot_id;
                    v_to_breakage := v_to_breakage + v_take;
                END IF;
                v_left := v_left - v_take;
                EXIT WHEN v_left = 0;
            END LOOP;
            result.transaction_id := ledger_post(p_team, p_kind, p_key,
                CASE WHEN p_kind = 'release' THEN p_reference ELSE h.reference END, p_now, p_hold,
                v_available, v_held, ARRAY['held', 'available', 'breakage'],
                ARRAY[-v_amount, v_to_available, v_to_breakage]);
        END IF;
        IF p_kind = 'release' THEN
            UPDATE ledger_hold SET released = released + v_amount WHERE id = p_hold RETURNING * INTO h;
        ELSE
            UPDATE ledger_hold SET released = released + v_amount, resolved_at = p_now,
                status = CASE p_kind WHEN 'hold_close' THEN 'posted' WHEN 'hold_void' THEN 'voided'
                                     ELSE 'expired' END
                WHERE id = p_hold RETURNING * INTO h;
        END IF;
    END IF;

    IF result.status IS NULL THEN
        result.status := 'done';
        result.hold_id := p_hold;
    END IF;
    result.hold_credits := h.credits;
    result.hold_captured := h.captured;
    result.hold_released := h.released;
    result.hold_refunded := h.refunded;
    result.hold_status := h.status;
    result.hold_resolved_at := h.resolved_at;
    RETURN ledger_record(p_key, p_kind, p_team, p_request, p_now, result);
END $$;
"""


def _restore_0004() -> str:
    """0004's own definitions of the two functions, as it installed them."""
    install = importlib.import_module("ledger.migrations.0004_ledger_hot_path_functions").INSTALL
    parts = install.split("CREATE FUNCTION ")
    kept = [p for p in parts if p.startswith(("ledger_hold_op(", "ledger_hold_step("))]
    return "".join("CREATE OR REPLACE FUNCTION " + p.split("-- Several operations")[0] for p in kept)


class PostgresOnlySQL(migrations.RunSQL):
    """RunSQL that runs only on PostgreSQL (as in 0002 and 0004: SQLite runs the Python bodies)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0004_ledger_hot_path_functions")]

    operations = [PostgresOnlySQL(INSTALL, _restore_0004())]
