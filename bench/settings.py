"""Bench-only settings: the production settings plus a URLconf with a minimal DRF endpoint."""

from tradingrobot.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
