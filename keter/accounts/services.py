from django.contrib.auth.forms import PasswordResetForm
from django.db import transaction
from django.http import HttpRequest

from keter.accounts.models import Membership, Team, User
from keter.accounts.roles import Role
from keter.errors import DomainError


class MembershipError(DomainError):
    pass


def _lock_owners(team: Team) -> list[Membership]:
    # Locking the owner rows serialises concurrent demotions/removals, so two owners cannot both leave.
    return list(Membership.objects.select_for_update().filter(team=team, role=Role.OWNER).order_by("id"))


@transaction.atomic
def membership_add(
    *, team: Team, email: str, role: str, name: str = "", request: HttpRequest | None = None
) -> Membership:
    """Add a person to a team. A new email gets an account and an email inviting them to set a password."""
    email = User.objects.normalize_email(email).strip().lower()
    user = User.objects.filter(email__iexact=email).first()
    is_new_user = user is None
    if is_new_user:
        user = User.objects.create_user(email=email, password=None, name=name.strip())
    elif Membership.objects.filter(team=team, user=user).exists():
        raise MembershipError(f"{email} is already a member of {team.name}", field="email")
    membership = Membership.objects.create(team=team, user=user, role=role)
    if is_new_user:
        transaction.on_commit(lambda: _send_invitation(email=email, request=request))
    return membership


def _send_invitation(*, email: str, request: HttpRequest | None) -> None:
    form = PasswordResetForm({"email": email})
    if form.is_valid():
        # Django's reset flow skips users without a usable password, so we hand it the user directly.
        form.get_users = lambda _email: User.objects.filter(email__iexact=email)
        form.save(
            request=request,
            use_https=bool(request and request.is_secure()),
            subject_template_name="accounts/invitation_subject.txt",
            email_template_name="accounts/invitation_email.txt",
            domain_override=None if request else "localhost:8000",
        )


@transaction.atomic
def membership_change_role(*, membership: Membership, role: str) -> Membership:
    owners = _lock_owners(membership.team)
    if membership.role == Role.OWNER and role != Role.OWNER and len(owners) == 1:
        raise MembershipError("A team needs at least one owner: make someone else owner first", field="role")
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership) -> None:
    owners = _lock_owners(membership.team)
    if membership.role == Role.OWNER and len(owners) == 1:
        raise MembershipError("You cannot remove the last owner of a team")
    membership.delete()


def team_set_alerts(*, team: Team, low_balance_threshold: int) -> Team:
    team.low_balance_threshold = low_balance_threshold
    team.save(update_fields=["low_balance_threshold"])
    return team
