from keter.accounts.models import Plan
from keter.accounts.plans import load_plans


def test_it_seeds_the_published_plans_once_however_often_it_runs(db):
    load_plans()
    load_plans()
    plans = {p.slug: p for p in Plan.objects.all()}
    assert list(plans) == ["free", "standard", "pro", "studio", "enterprise"]
    assert [p.concurrent_generations for p in plans.values()] == [1, 2, 3, 5, 10]
    assert [(p.price_cents, p.monthly_credits) for p in list(plans.values())[:4]] == [
        (0, 125),
        (1500, 625),
        (3500, 2250),
        (9500, 2250),
    ]
    # Upgrading Standard -> Pro mid-cycle adds the difference in monthly credits.
    assert plans["pro"].monthly_credits - plans["standard"].monthly_credits == 1625


def test_the_free_plan_grants_once_never_expires_and_stops_at_720p(db):
    free = {p.slug: p for p in load_plans()}["free"]
    assert (free.grant_cadence, free.rollover, free.max_quality) == ("once", "never_expire", "720p")
    assert free.quality_label == "up to 720p"


def test_paid_plans_reset_at_billing_and_enterprise_is_an_annual_pool(db):
    plans = {p.slug: p for p in load_plans()}
    assert {plans[s].rollover for s in ("standard", "pro", "studio")} == {"reset_at_billing"}
    assert plans["studio"].has_explore_queue
    assert (plans["enterprise"].grant_cadence, plans["enterprise"].rollover) == ("annual", "no_rollover")
    assert plans["enterprise"].price_label == "custom"
