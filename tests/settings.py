"""The test suite's settings: config.settings in development mode (DEBUG=1 in the
environment: the public development SECRET_KEY and local hosts are accepted, no HTTPS
redirect, cookies not Secure) and a cache key prefix of its own. pytest-django still runs
every test with settings.DEBUG off.
Processes a test starts inherit the environment. The production settings are tested by
running manage.py without DEBUG (tests/test_production_settings.py)."""

import os
import uuid

os.environ.setdefault("DEBUG", "1")
# A cache of its own per run (the processes a test starts share it): test databases are
# created afresh, so what an earlier run left in Redis (throttle counters, the events mark)
# must not be read as this run's.
os.environ.setdefault("KEYSTONE_CACHE_KEY_PREFIX", f"keystone-test-{uuid.uuid4().hex[:12]}")

from config.settings import *  # noqa: E402, F403
