"""The project package.

The Celery app (`tradingrobot.celery`) is loaded by `tradingrobot.api`'s AppConfig when Django
starts, not here: importing this package must stay cheap, because the launcher (`make run`) and
the embedded Redis helper import it without Django (issue 20). `celery -A tradingrobot` finds
`tradingrobot.celery` by itself.
"""
