from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from keter.accounts.models import Membership, Plan, Team, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "name", "is_staff", "is_active"]
    search_fields = ["email", "name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Profile", {"fields": ["name"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]

    def render_delete_form(self, request, context):
        if context.get("protected"):
            self.message_user(
                request,
                "This person's name is on credit history, which is never deleted: untick “Active” to stop "
                "them signing in, and remove them from their teams.",
                messages.WARNING,
            )
        return super().render_delete_form(request, context)


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "price_cents",
        "monthly_credits",
        "grant_cadence",
        "rollover",
        "concurrent_generations",
    ]
    prepopulated_fields = {"slug": ["name"]}


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "plan", "is_archived"]
    list_filter = ["plan", "is_archived"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]
    actions = ["archive"]

    @admin.action(description="Archive the selected teams (keeps their credit history)")
    def archive(self, request, queryset):
        # A team with credit history cannot be deleted (its ledger rows are protected): archiving stops its
        # plan grants and keeps every record, readable by its members, changed by nobody (team_view).
        count = queryset.update(is_archived=True)
        self.message_user(request, f"Archived {count} team{'s' if count != 1 else ''}.", messages.SUCCESS)

    def render_delete_form(self, request, context):
        if context.get("protected"):
            self.message_user(
                request,
                "This team has credit history, which is never deleted: archive it instead "
                "(Teams → select it → “Archive the selected teams”).",
                messages.WARNING,
            )
        return super().render_delete_form(request, context)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "team", "role"]
    list_filter = ["role", "team"]
    search_fields = ["user__email", "team__name"]
    autocomplete_fields = ["user", "team"]
