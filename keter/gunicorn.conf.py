"""gunicorn settings for a deployment: `gunicorn keter.wsgi -c keter/gunicorn.conf.py`."""

import multiprocessing
import os

bind = os.environ.get("KETER_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("KETER_WEB_WORKERS", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("KETER_WEB_THREADS", 2))
timeout = 30
graceful_timeout = 30
keepalive = 5
max_requests = 2000  # recycle workers now and then so a slow leak never grows
max_requests_jitter = 200
accesslog = "-"
errorlog = "-"
forwarded_allow_ips = os.environ.get("KETER_FORWARDED_ALLOW_IPS", "127.0.0.1")
