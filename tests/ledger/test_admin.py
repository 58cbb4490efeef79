import pytest
from django.contrib import admin
from django.urls import reverse

from ledger.models import Account, Entry, Hold, HoldLot, Lot, Operation, Transaction

LEDGER_MODELS = [Account, Entry, Hold, HoldLot, Lot, Operation, Transaction]


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser(email="root@keter.local", password="x")


@pytest.mark.parametrize("model", LEDGER_MODELS, ids=lambda m: m.__name__)
def test_every_ledger_model_is_in_the_admin_to_read_only(client, superuser, rf, grant, hold, model):
    grant(1_000)
    hold(10)
    client.force_login(superuser)
    name = f"admin:ledger_{model._meta.model_name}"
    assert client.get(reverse(f"{name}_changelist")).status_code == 200
    row = model.objects.first()
    page = client.get(reverse(f"{name}_change", args=[row.pk]))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    request = rf.get("/")
    request.user = superuser
    model_admin = admin.site._registry[model]
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, row)
    assert not model_admin.has_delete_permission(request, row)
