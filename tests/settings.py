"""The test suite's settings: config.settings in development mode (DEBUG=1 in the
environment: the public development SECRET_KEY and local hosts are accepted, no HTTPS
redirect, cookies not Secure). pytest-django still runs every test with settings.DEBUG off.
Processes a test starts inherit the environment. The production settings are tested by
running manage.py without DEBUG (tests/test_production_settings.py)."""

import os

os.environ.setdefault("DEBUG", "1")

from config.settings import *  # noqa: E402, F403
