from django.contrib import admin

from planner.models import Job, PriceVersion, VideoModel


class PriceVersionInline(admin.TabularInline):
    model = PriceVersion
    extra = 1
    ordering = ["-effective_from"]


@admin.register(VideoModel)
class VideoModelAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "vendor", "success_rate", "success_rate_is_estimate", "is_active"]
    list_filter = ["vendor", "is_active", "required_reference"]
    search_fields = ["name", "slug", "vendor"]
    inlines = [PriceVersionInline]


@admin.register(PriceVersion)
class PriceVersionAdmin(admin.ModelAdmin):
    list_display = ["video_model", "effective_from", "source"]
    list_filter = ["video_model__vendor"]
    date_hierarchy = "effective_from"


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    """Read-only: a job's state and credits change only through the queue's services."""

    list_display = [
        "id",
        "team",
        "project",
        "scene",
        "take_number",
        "state",
        "verdict",
        "credits",
        "attempts",
    ]
    list_filter = ["state", "verdict", "team"]
    search_fields = ["project__name", "scene__title"]
    list_select_related = ["team", "project", "scene"]
    date_hierarchy = "queued_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
