"""On PostgreSQL, the hold operations run as one function call each: one round trip per operation.

Through Python, a hold or a capture needed four round trips (BEGIN, the lock and reads, the writes,
COMMIT) and about 1.3 ms of client CPU to build and bind its statements; the database itself spent
little. Here each operation is a PL/pgSQL function that does what `ledger.services` does, in the same
order: lock the team's two account rows in id order, look the key up (replay, or refuse a changed
request), read the hold and its lots under the lock, decide (and maybe refuse), write, record the
outcome under the key. Called outside a transaction it is one statement, so its own transaction, and
the deferred balance trigger still judges it at commit.

`ledger.services` calls these on PostgreSQL (see `ledger/services/_pg.py`); SQLite runs the Python
bodies. The Python bodies stay the reference: tests/ledger/test_sql_parity.py runs the same random
workloads through both on PostgreSQL and requires identical rows, so the two cannot drift silently.
"""

from django.db import migrations

INSTALL = r"""
CREATE TYPE ledger_outcome AS (
    status text,              -- done | refused | conflict
    replayed boolean,
    transaction_id bigint,
    hold_id bigint,
    error_code text,
    error_details jsonb,
    hold_credits bigint,
    hold_captured bigint,
    hold_released bigint,
    hold_refunded bigint,
    hold_status text,
    hold_resolved_at timestamptz
);

-- The team's only serialization point: its two account rows, locked in id order (created on first use).
CREATE FUNCTION ledger_lock_team(p_team bigint, OUT available_id bigint, OUT held_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR attempt IN 1..2 LOOP
        FOR r IN SELECT id, kind FROM ledger_account WHERE team_id = p_team ORDER BY id FOR UPDATE LOOP
            IF r.kind = 'available' THEN available_id := r.id; ELSIF r.kind = 'held' THEN held_id := r.id; END IF;
        END LOOP;
        EXIT WHEN available_id IS NOT NULL AND held_id IS NOT NULL;
        INSERT INTO ledger_account (team_id, kind, balance)
            VALUES (p_team, 'available', 0), (p_team, 'held', 0) ON CONFLICT DO NOTHING;
    END LOOP;
END $$;

-- A key used before: its first outcome, or a conflict when the request differs. status is NULL if new.
CREATE FUNCTION ledger_replay(p_key text, p_kind text, p_team bigint, p_request jsonb)
RETURNS ledger_outcome LANGUAGE plpgsql AS $$
DECLARE
    op ledger_operation;
    result ledger_outcome;
BEGIN
    SELECT * INTO op FROM ledger_operation WHERE key = p_key;
    IF NOT FOUND THEN
        RETURN result;
    END IF;
    result.replayed := true;
    IF op.kind <> p_kind OR op.team_id <> p_team OR op.request <> p_request THEN
        result.status := 'conflict';
    ELSIF op.outcome = 'refused' THEN
        result.status := 'refused';
        result.error_code := op.error_code;
        result.error_details := op.error_details;
    ELSE
        result.status := 'done';
        result.transaction_id := op.transaction_id;
        result.hold_id := op.hold_id;
    END IF;
    RETURN result;
END $$;

-- The stored refusal's text, worded as ledger.errors words it.
CREATE FUNCTION ledger_refusal_message(p_code text, d jsonb) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_code
        WHEN 'insufficient_credits' THEN format('Not enough credits: %s available, %s needed',
            to_char((d->>'available')::bigint, 'FM999,999,999,999,990'),
            to_char((d->>'needed')::bigint, 'FM999,999,999,999,990'))
        WHEN 'hold_already_resolved' THEN format('Hold #%s is already %s: it cannot change again',
            d->>'hold_id', d->>'status')
        WHEN 'hold_exceeded' THEN format('Hold #%s keeps %s credits: it cannot give %s', d->>'hold_id',
            to_char((d->>'open_credits')::bigint, 'FM999,999,999,999,990'),
            to_char((d->>'requested')::bigint, 'FM999,999,999,999,990'))
        ELSE ''
    END
$$;

CREATE FUNCTION ledger_record(
    p_key text, p_kind text, p_team bigint, p_request jsonb, p_now timestamptz, p_result ledger_outcome
) RETURNS ledger_outcome LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ledger_operation (key, kind, team_id, request, outcome, transaction_id, hold_id, lot_id,
                                  error_code, error_message, error_details, created_at)
    VALUES (p_key, p_kind, p_team, p_request, p_result.status, p_result.transaction_id, p_result.hold_id,
            NULL, coalesce(p_result.error_code, ''),
            CASE WHEN p_result.error_code IS NULL THEN ''
                 ELSE ledger_refusal_message(p_result.error_code, p_result.error_details) END,
            coalesce(p_result.error_details, '{}'::jsonb), p_now);
    p_result.replayed := false;
    RETURN p_result;
END $$;

-- One balanced transaction: legs are (account kind, signed credits); zero legs are dropped.
CREATE FUNCTION ledger_post(
    p_team bigint, p_kind text, p_key text, p_reference text, p_now timestamptz, p_hold bigint,
    p_available_id bigint, p_held_id bigint, p_kinds text[], p_credits bigint[]
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_txn bigint;
    v_account bigint;
    v_after bigint;
BEGIN
    INSERT INTO ledger_transaction (team_id, kind, key, reference, memo, actor_id, hold_id, lot_id,
                                    corrects_id, created_at)
    VALUES (p_team, p_kind, p_key, p_reference, '', NULL, p_hold, NULL, NULL, p_now)
    RETURNING id INTO v_txn;
    FOR i IN 1..array_length(p_kinds, 1) LOOP
        CONTINUE WHEN p_credits[i] = 0;
        IF p_kinds[i] IN ('available', 'held') THEN
            v_account := CASE p_kinds[i] WHEN 'available' THEN p_available_id ELSE p_held_id END;
            UPDATE ledger_account SET balance = balance + p_credits[i] WHERE id = v_account
                RETURNING balance INTO v_after;
        ELSE
            SELECT id INTO STRICT v_account FROM ledger_account WHERE team_id IS NULL AND kind = p_kinds[i];
            v_after := NULL;
        END IF;
        INSERT INTO ledger_entry (transaction_id, account_id, credits, balance_after)
            VALUES (v_txn, v_account, p_credits[i], v_after);
    END LOOP;
    RETURN v_txn;
END $$;

-- Free credits of the team's spendable lots, taken in burn order: (lot ids, takes, all free credits).
-- Short of p_credits when the sum of takes is less (the caller refuses).
CREATE FUNCTION ledger_pick_lots(
    p_team bigint, p_credits bigint, p_now timestamptz, OUT lot_ids bigint[], OUT takes bigint[], OUT free bigint
) LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_needed bigint := p_credits;
    v_take bigint;
BEGIN
    lot_ids := '{}'; takes := '{}'; free := 0;
    FOR r IN
        SELECT id, remaining - reserved AS free FROM ledger_lot
        WHERE team_id = p_team AND status = 'active' AND remaining > reserved AND effective_at <= p_now
          AND (expires_at IS NULL OR expires_at > p_now)
        ORDER BY priority, expires_at IS NULL, expires_at, category <> 'promotional', created_at, id
    LOOP
        free := free + r.free;
        v_take := least(r.free, v_needed);
        lot_ids := lot_ids || r.id;
        takes := takes || v_take;
        v_needed := v_needed - v_take;
        EXIT WHEN v_needed = 0;
    END LOOP;
END $$;

CREATE FUNCTION ledger_hold_op(
    p_team bigint, p_key text, p_request jsonb, p_now timestamptz,
    p_credits bigint, p_reference text, p_expires_at timestamptz
) RETURNS ledger_outcome LANGUAGE plpgsql AS $$
DECLARE
    acc record;
    picks record;
    result ledger_outcome;
    v_hold bigint;
BEGIN
    acc := ledger_lock_team(p_team);
    result := ledger_replay(p_key, 'hold', p_team, p_request);
    IF result.status IS NOT NULL THEN
        RETURN result;
    END IF;
    picks := ledger_pick_lots(p_team, p_credits, p_now);
    IF picks.free < p_credits THEN
        result.status := 'refused';
        result.error_code := 'insufficient_credits';
        result.error_details := jsonb_build_object('available', picks.free, 'needed', p_credits);
    ELSE
        INSERT INTO ledger_hold (team_id, credits, captured, released, refunded, status, reference, key,
                                 expires_at, created_at, resolved_at)
        VALUES (p_team, p_credits, 0, 0, 0, 'pending', p_reference, p_key, p_expires_at, p_now, NULL)
        RETURNING id INTO v_hold;
        result.transaction_id := ledger_post(p_team, 'hold', p_key, p_reference, p_now, v_hold,
            acc.available_id, acc.held_id, ARRAY['available', 'held'], ARRAY[-p_credits, p_credits]);
        INSERT INTO ledger_holdlot (hold_id, lot_id, reserved, captured, released, refunded)
            SELECT v_hold, u.lot, u.take, 0, 0, 0 FROM unnest(picks.lot_ids, picks.takes) AS u(lot, take);
        UPDATE ledger_lot SET reserved = reserved + u.take
            FROM unnest(picks.lot_ids, picks.takes) AS u(lot, take) WHERE ledger_lot.id = u.lot;
        result.status := 'done';
        result.hold_id := v_hold;
    END IF;
    RETURN ledger_record(p_key, 'hold', p_team, p_request, p_now, result);
END $$;

-- Every operation on an existing hold: capture, release, hold_extend, and the resolutions hold_close,
-- hold_void and hold_expire. p_credits is ignored by the resolutions; p_reference by all but capture
-- and release (the others post under the hold's own reference).
CREATE FUNCTION ledger_hold_step(
    p_kind text, p_team bigint, p_hold bigint, p_key text, p_request jsonb, p_now timestamptz,
    p_credits bigint, p_reference text
) RETURNS ledger_outcome LANGUAGE plpgsql AS $$
DECLARE
    acc record;
    picks record;
    a record;
    h ledger_hold;
    result ledger_outcome;
    v_open bigint;
    v_amount bigint;
    v_left bigint;
    v_take bigint;
    v_to_available bigint := 0;
    v_to_breakage bigint := 0;
BEGIN
    acc := ledger_lock_team(p_team);
    result := ledger_replay(p_key, p_kind, p_team, p_request);
    IF result.status IS NOT NULL THEN
        RETURN result;
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
        UPDATE ledger_hold SET captured = captured + p_credits WHERE id = p_hold RETURNING * INTO h;
        result.transaction_id := ledger_post(p_team, 'capture', p_key, p_reference, p_now, p_hold,
            acc.available_id, acc.held_id, ARRAY['held', 'usage'], ARRAY[-p_credits, p_credits]);

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
                acc.available_id, acc.held_id, ARRAY['available', 'held'], ARRAY[-p_credits, p_credits]);
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
                acc.available_id, acc.held_id, ARRAY['held', 'available', 'breakage'],
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
-- Several operations of one team in one call, as if called one after the other. Steps share a group
-- number when each only makes sense after the one before: the first step of a group that is not done (a
-- refusal or a conflict) skips the rest of its group (returned as 'skipped'); other groups go on. A step
-- of kind 'hold' places a new hold; the others run on the hold they name (capture, release, hold_extend,
-- hold_close, hold_void).
CREATE FUNCTION ledger_hold_steps(
    p_team bigint, p_now timestamptz, p_kinds text[], p_holds bigint[], p_keys text[], p_requests jsonb[],
    p_credits bigint[], p_references text[], p_groups int[]
) RETURNS SETOF ledger_outcome LANGUAGE plpgsql AS $$
DECLARE
    result ledger_outcome;
    skipped ledger_outcome;
    v_stopped int;
BEGIN
    skipped.status := 'skipped';
    FOR i IN 1..array_length(p_kinds, 1) LOOP
        IF p_groups[i] = v_stopped THEN
            RETURN NEXT skipped;
            CONTINUE;
        END IF;
        IF p_kinds[i] = 'hold' THEN
            result := ledger_hold_op(p_team, p_keys[i], p_requests[i], p_now, p_credits[i], p_references[i], NULL);
        ELSE
            result := ledger_hold_step(p_kinds[i], p_team, p_holds[i], p_keys[i], p_requests[i], p_now,
                                       p_credits[i], p_references[i]);
        END IF;
        RETURN NEXT result;
        IF result.status <> 'done' THEN
            v_stopped := p_groups[i];
        END IF;
    END LOOP;
END $$;
"""

UNINSTALL = """
DROP FUNCTION IF EXISTS ledger_hold_steps(bigint, timestamptz, text[], bigint[], text[], jsonb[], bigint[], text[], int[]);
DROP FUNCTION IF EXISTS ledger_hold_step(text, bigint, bigint, text, jsonb, timestamptz, bigint, text);
DROP FUNCTION IF EXISTS ledger_hold_op(bigint, text, jsonb, timestamptz, bigint, text, timestamptz);
DROP FUNCTION IF EXISTS ledger_pick_lots(bigint, bigint, timestamptz);
DROP FUNCTION IF EXISTS ledger_post(bigint, text, text, text, timestamptz, bigint, bigint, bigint, text[], bigint[]);
DROP FUNCTION IF EXISTS ledger_record(text, text, bigint, jsonb, timestamptz, ledger_outcome);
DROP FUNCTION IF EXISTS ledger_refusal_message(text, jsonb);
DROP FUNCTION IF EXISTS ledger_replay(text, text, bigint, jsonb);
DROP FUNCTION IF EXISTS ledger_lock_team(bigint);
DROP TYPE IF EXISTS ledger_outcome;
"""


class PostgresOnlySQL(migrations.RunSQL):
    """RunSQL that runs only on PostgreSQL (as in 0002: SQLite runs the Python bodies)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0003_transaction_team_created_index")]

    operations = [PostgresOnlySQL(INSTALL, UNINSTALL)]
