from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingrobot.settings")
# Celery's Django fixup runs Django's system checks when a worker or beat starts; they import
# the URLconf and with it every view, admin and API module (and pandas), which beat never needs:
# 170 MB for beat instead of ~60 (issue 20). The checks run where they belong: `manage.py
# migrate`/`check` (the launcher migrates before starting anything) and every web process.
os.environ.setdefault("CELERY_SKIP_CHECKS", "1")

app = Celery("tradingrobot")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
