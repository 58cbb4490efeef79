from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404

from keter.accounts.models import Membership

ARCHIVED = "This team is archived: its records stay readable, and nothing in it can be changed"


def team_view(action: str):
    """Resolve `team_slug` to the signed-in user's membership and check `action` against the matrix.

    A team the user is not in is a 404 (we do not confirm it exists); a role without the right is a 403.
    An archived team stays readable by its members (its history, reports and exports) but changes
    nothing: every other method than GET or HEAD is a 403 that says so.
    The view receives the membership as `request.membership` and the team as `request.team`.
    """

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, team_slug: str, *args, **kwargs):
            membership = (
                Membership.objects.select_related("team__plan", "user")
                .filter(team__slug=team_slug, user=request.user)
                .first()
            )
            if membership is None:
                raise Http404("No such team")
            if not membership.can(action):
                raise PermissionDenied(f"Your role ({membership.get_role_display()}) cannot do this")
            request.membership = membership
            request.team = membership.team
            if membership.team.is_archived and request.method not in ("GET", "HEAD"):
                raise PermissionDenied(ARCHIVED)
            if request.session.get("team_slug") != team_slug:
                request.session["team_slug"] = team_slug
            return view(request, *args, **kwargs)

        wrapper.team_action = action
        return wrapper

    return decorator
