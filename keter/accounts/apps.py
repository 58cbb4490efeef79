from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "keter.accounts"
    label = "accounts"
    verbose_name = "Accounts, teams and plans"
