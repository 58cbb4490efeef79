"""The ledger's writes: keyword-only `ledger_<verb>` functions, each one idempotent by its `key`.

Split by domain (lots, holds, plans) with the shared machinery in `_core`; import from here.
"""

from ledger.services._core import MAX_CREDITS, ensure_system_accounts
from ledger.services.holds import (
    NOT_ALL_DONE,
    CaptureAndClose,
    HoldPart,
    LedgerCall,
    VoidInto,
    ledger_capture,
    ledger_close_hold,
    ledger_expire_holds,
    ledger_hold,
    ledger_hold_extend,
    ledger_hold_split,
    ledger_refund,
    ledger_release,
    ledger_resolve_holds,
    ledger_resolve_holds_call,
    ledger_void_hold,
)
from ledger.services.lots import MIN_TOP_UP, ledger_adjust, ledger_expire_lots, ledger_grant, ledger_top_up
from ledger.services.plans import ledger_grant_plan_credits, plan_grant_key, team_period

__all__ = [
    "CaptureAndClose",
    "HoldPart",
    "VoidInto",
    "MAX_CREDITS",
    "MIN_TOP_UP",
    "NOT_ALL_DONE",
    "ensure_system_accounts",
    "ledger_adjust",
    "ledger_capture",
    "ledger_close_hold",
    "ledger_expire_holds",
    "ledger_expire_lots",
    "ledger_grant",
    "ledger_grant_plan_credits",
    "ledger_hold",
    "ledger_hold_extend",
    "ledger_hold_split",
    "ledger_refund",
    "ledger_release",
    "LedgerCall",
    "ledger_resolve_holds",
    "ledger_resolve_holds_call",
    "ledger_top_up",
    "ledger_void_hold",
    "plan_grant_key",
    "team_period",
]
