from django.contrib import admin
from django.urls import include, path

from keter.accounts import views as account_views
from keter.health import healthz
from planner.views import catalog as catalog_views

# Everything a team owns lives under /t/<team-slug>/, so links are shareable and tenancy is explicit.
team_patterns = [
    path("", include("keter.accounts.urls")),
    path("", include("ledger.urls")),
    path("", include("planner.urls")),
]

urlpatterns = [
    path("", account_views.home, name="home"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("api/estimate", catalog_views.estimate_api, name="api-estimate"),
    path("t/<slug:team_slug>/", include(team_patterns)),
]
