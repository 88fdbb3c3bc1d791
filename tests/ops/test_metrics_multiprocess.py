"""PROMETHEUS_MULTIPROC_DIR: counters kept by other processes (here two `load_source` runs)
are added up by /metrics in the serving process."""

import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.celery_worker import database_url
from tests.ops.conftest import scrape, value

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.postgres(reason="the load_source processes need the PostgreSQL test database")
@pytest.mark.django_db(transaction=True)
def test_metrics_add_up_the_counters_of_other_processes(client, settings, febrl_files, tmp_path):
    directory = tmp_path / "metrics"
    directory.mkdir()
    env = {**os.environ, "DATABASE_URL": database_url(), "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    env.pop("REDIS_URL", None)  # matching runs in the loading process, no broker involved
    for system in ("crm", "erp"):
        command = [sys.executable, "manage.py", "load_source", str(febrl_files[system])]
        command += ["--system", system, "--entity", "customer", "--no-progress"]
        subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = (ipaddress.ip_network("127.0.0.1/32"),)
    settings.PROMETHEUS_MULTIPROC_DIR = str(directory)

    figures = scrape(client)

    assert len(list(directory.glob("*.db"))) >= 2  # one file per process and kind of metric
    crm = {"system": "crm", "entity": "customer"}
    assert value(figures, "keystone_ingest_records_total", **crm, outcome="loaded") == 80
    assert value(figures, "keystone_ingest_records_total", **crm, outcome="rejected") == 1
    erp_loaded = value(
        figures, "keystone_ingest_records_total", system="erp", entity="customer", outcome="loaded"
    )
    assert erp_loaded > 80
    assert value(figures, "keystone_events_written_total", type="golden.created") == 80 + erp_loaded
    assert value(figures, "keystone_rejections_open", **crm) == 1  # read from the database
