"""Settings for benchmarks only (``DJANGO_SETTINGS_MODULE=bench._floor_settings``): the core's settings plus the floor
view of bench/_floor_urls.py. Never used in production (the image does not ship bench/), so the floor view is not
reachable there."""

from core.settings import *  # noqa: F403

ROOT_URLCONF = "bench._floor_urls"
