"""The ledger in the admin: to read and search, never to edit.

Every ledger row is written by `ledger.services`, which keeps entries, balances, lots and holds in step;
an edit by hand would break the invariants `ledger_check` verifies. Corrections are adjustments, made on
the team's credits page (or with `ledger_adjust`), so every model here is read-only.
"""

from django.contrib import admin

from ledger.models import Account, Entry, Hold, HoldLot, Lot, Operation, Transaction


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["id", "team", "kind", "balance"]
    list_filter = ["kind"]
    search_fields = ["team__name", "team__slug"]


class EntryInline(ReadOnlyInline):
    model = Entry
    fields = ["account", "credits", "balance_after"]


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "team", "kind", "reference", "key", "actor"]
    list_filter = ["kind", "team"]
    search_fields = ["reference", "key", "memo"]
    date_hierarchy = "created_at"
    inlines = [EntryInline]
    list_select_related = ["team", "actor"]


@admin.register(Entry)
class EntryAdmin(ReadOnlyAdmin):
    list_display = ["id", "transaction", "account", "credits", "balance_after"]
    list_filter = ["account__kind"]
    search_fields = ["transaction__reference", "transaction__key"]
    list_select_related = ["transaction", "account__team"]


@admin.register(Lot)
class LotAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "team",
        "category",
        "priority",
        "credits",
        "remaining",
        "reserved",
        "status",
        "expires_at",
    ]
    list_filter = ["category", "status", "team"]
    search_fields = ["reference", "key", "memo"]


class HoldLotInline(ReadOnlyInline):
    model = HoldLot
    fields = ["lot", "reserved", "captured", "released", "refunded"]


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "team",
        "reference",
        "credits",
        "captured",
        "released",
        "refunded",
        "status",
        "expires_at",
    ]
    list_filter = ["status", "team"]
    search_fields = ["reference", "key"]
    inlines = [HoldLotInline]


@admin.register(HoldLot)
class HoldLotAdmin(ReadOnlyAdmin):
    list_display = ["id", "hold", "lot", "reserved", "captured", "released", "refunded"]


@admin.register(Operation)
class OperationAdmin(ReadOnlyAdmin):
    list_display = ["key", "kind", "team", "outcome", "error_code", "created_at"]
    list_filter = ["outcome", "kind"]
    search_fields = ["key"]
