from planner.models import Notification


def notifications(request) -> dict:
    membership = getattr(request, "membership", None)
    if membership is None:
        return {}
    # Lazy: counted only when a page shows the badge.
    return {
        "unread_notifications": lambda: Notification.objects.filter(
            recipient_id=membership.user_id, team_id=membership.team_id, read_at__isnull=True
        ).count()
    }
