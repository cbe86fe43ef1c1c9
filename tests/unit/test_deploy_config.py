"""The deployment files agree: Prometheus scrapes every process docker-compose.yml starts, and
the dashboard serves the pinned chart library."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml

from api.routes.dashboard import ASSETS_DIR, VENDORED

ROOT = Path(__file__).resolve().parents[2]


def _load(path: str) -> Any:
    return yaml.safe_load((ROOT / path).read_text())


def test_prometheus_scrapes_the_api_and_every_worker_of_the_compose_file() -> None:
    compose = _load("docker-compose.yml")
    services = compose["services"]
    workers = {name for name, spec in services.items() if "workers" in (spec.get("command") or [])}
    assert workers, "the compose file starts workers"
    scrape = _load("deploy/prometheus.yml")["scrape_configs"]
    targets = {t for job in scrape for c in job["static_configs"] for t in c["targets"]}
    assert "api:8000" in targets
    assert {f"{w}:9100" for w in workers} <= targets
    assert {t.split(":")[0] for t in targets} <= set(services)
    volumes = services["prometheus"]["volumes"]
    assert "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in volumes


def test_workers_in_compose_expose_metrics_to_the_network() -> None:
    anchor = _load("docker-compose.yml")["x-worker"]["environment"]
    assert anchor["NOTIFY_METRICS_HOST"] == "0.0.0.0"
    assert anchor["NOTIFY_METRICS_PORT"] == "9100"


def test_the_vendored_chart_library_is_the_pinned_one() -> None:
    for name, digest in VENDORED.items():
        data = (ASSETS_DIR / "vendor" / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, name
    assert (ASSETS_DIR / "vendor" / "uPlot.LICENSE").read_text().startswith("The MIT License")
