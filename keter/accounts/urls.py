from django.urls import path

from keter.accounts import views

app_name = "accounts"

urlpatterns = [
    path("team/", views.team, name="team"),
    path("team/alerts/", views.team_alerts, name="team-alerts"),
    path("team/members/add/", views.member_add, name="member-add"),
    path("team/members/<int:membership_id>/role/", views.member_role, name="member-role"),
    path("team/members/<int:membership_id>/remove/", views.member_remove, name="member-remove"),
]
