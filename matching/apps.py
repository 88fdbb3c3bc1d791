from django.apps import AppConfig


class MatchingConfig(AppConfig):
    verbose_name = "Matching"
    name = "matching"
