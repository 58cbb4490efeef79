from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from keter.accounts.decorators import team_view
from planner.models import Notification


def my_notifications(request: HttpRequest):
    return Notification.objects.filter(recipient=request.user, team=request.team)


@require_GET
@team_view("dashboard.view")
def notification_list(request: HttpRequest) -> HttpResponse:
    notifications = my_notifications(request)[:100]
    return render(request, "planner/notifications.html", {"notifications": notifications})


@require_POST
@team_view("dashboard.view")
def notifications_read(request: HttpRequest) -> HttpResponse:
    my_notifications(request).filter(read_at__isnull=True).update(read_at=timezone.now())
    return redirect("planner:notifications", request.team.slug)
