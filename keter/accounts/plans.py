"""The seed plans, from shared/reference/video-pricing.md (figures it marks as assumptions are ours)."""

from keter.accounts.models import Plan

R = Plan.Rollover
C = Plan.Cadence

SEED_PLANS = [
    {"slug": "free", "name": "Free", "price_cents": 0, "monthly_credits": 125, "grant_cadence": C.ONCE,
     "rollover": R.NEVER_EXPIRE, "concurrent_generations": 1, "max_clip_seconds": 10,
     "max_quality": "720p", "notes": "125 credits once; 720p max", "position": 0},
    {"slug": "standard", "name": "Standard", "price_cents": 1500, "monthly_credits": 625,
     "grant_cadence": C.MONTHLY, "rollover": R.RESET_AT_BILLING, "concurrent_generations": 2,
     "notes": "Plan credits reset at the billing date; purchases never expire",
     "position": 1},
    {"slug": "pro", "name": "Pro", "price_cents": 3500, "monthly_credits": 2250, "grant_cadence": C.MONTHLY,
     "rollover": R.RESET_AT_BILLING, "concurrent_generations": 3,
     "notes": "Plan credits reset at the billing date; purchases never expire", "position": 2},
    {"slug": "studio", "name": "Studio", "price_cents": 9500, "monthly_credits": 2250,
     "grant_cadence": C.MONTHLY, "rollover": R.RESET_AT_BILLING, "concurrent_generations": 5,
     "has_explore_queue": True,
     "notes": "Plus an unlimited slow explore queue that waits behind paid jobs", "position": 3},
    {"slug": "enterprise", "name": "Enterprise", "price_cents": 0, "is_custom_price": True,
     "monthly_credits": 100000, "grant_cadence": C.ANNUAL, "rollover": R.NO_ROLLOVER,
     "concurrent_generations": 10,
     "notes": "Custom price; annual shared pool for the team, no rollover", "position": 4},
]  # fmt: skip


def load_plans() -> list[Plan]:
    """Create or update the seed plans (idempotent)."""
    return [Plan.objects.update_or_create(slug=p["slug"], defaults=p)[0] for p in SEED_PLANS]
