from django.urls import path

from ledger import views

app_name = "ledger"

urlpatterns = [
    path("credits/", views.credits, name="credits"),
    path("credits/top-up/", views.top_up, name="top-up"),
    path("credits/grant/", views.grant, name="grant"),
    path("credits/adjust/", views.adjust, name="adjust"),
    path("reports/balance/", views.balance_report, name="balance-report"),
    path("reports/ledger.csv", views.register_csv, name="register-csv"),
    path("reports/ledger.xlsx", views.register_xlsx, name="register-xlsx"),
    path("reports/journal.beancount", views.journal, name="journal"),
]
