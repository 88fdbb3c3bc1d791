from django.apps import AppConfig


class StewardshipConfig(AppConfig):
    name = "stewardship"
