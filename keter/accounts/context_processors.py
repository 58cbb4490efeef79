from keter.accounts.navigation import nav_for


def team_context(request) -> dict:
    membership = getattr(request, "membership", None)
    if membership is None:
        return {}
    return {
        "membership": membership,
        "team": membership.team,
        # Lazy: partial responses (htmx) never render the navigation, so they never pay for it.
        "nav_items": lambda: nav_for(membership, request.path),
        # Lazily evaluated: only pages that render the team switcher pay for the query.
        "my_memberships": lambda: list(
            request.user.memberships.select_related("team").order_by("team__name")
        ),
    }
