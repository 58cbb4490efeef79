"""Demo teams and logins for the embedded mode and the browser tests (idempotent)."""

from keter.accounts.models import Membership, Team, User
from keter.accounts.plans import load_plans
from keter.accounts.roles import Role

DEMO_PASSWORD = "demo"

DEMO_TEAMS = [
    {
        "slug": "northwind",
        "name": "Northwind Studio",
        "plan": "pro",
        "members": [
            ("owner@demo.keter", "Olivia Owner", Role.OWNER),
            ("lead@demo.keter", "Liam Lead", Role.LEAD),
            ("producer@demo.keter", "Priya Producer", Role.PRODUCER),
            ("finance@demo.keter", "Farah Finance", Role.FINANCE),
            ("viewer@demo.keter", "Victor Viewer", Role.VIEWER),
        ],
    },
    {
        "slug": "blue-harbor",
        "name": "Blue Harbor Films",
        "plan": "standard",
        "members": [
            ("owner@harbor.keter", "Hana Harbor", Role.OWNER),
            ("producer@harbor.keter", "Pablo Harbor", Role.PRODUCER),
        ],
    },
]


def seed_accounts() -> list[Team]:
    plans = {plan.slug: plan for plan in load_plans()}
    teams = []
    for spec in DEMO_TEAMS:
        team, _ = Team.objects.update_or_create(
            slug=spec["slug"], defaults={"name": spec["name"], "plan": plans[spec["plan"]]}
        )
        for email, name, role in spec["members"]:
            user = User.objects.filter(email=email).first()
            if user is None:
                user = User.objects.create_user(email=email, password=DEMO_PASSWORD, name=name)
            Membership.objects.update_or_create(team=team, user=user, defaults={"role": role})
        teams.append(team)
    return teams


def demo_logins() -> list[tuple[str, str, str]]:
    return [(email, role.label, spec["name"]) for spec in DEMO_TEAMS for email, _, role in spec["members"]]
