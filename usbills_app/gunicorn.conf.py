"""gunicorn settings for the model site (values from the environment, validated here first).

    gunicorn -c usbills_app/gunicorn.conf.py "usbills_app:create_app()"

Defaults suit 1 vCPU / 1 GB: one worker process with 4 threads (gthread). Inference holds the
GIL-free runtime for a few ms, decoding releases the GIL in Pillow, so threads overlap I/O and
decode; more processes only multiply the model's memory.
"""

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# prometheus_client picks its storage when first imported: multiprocess mode (one file per
# worker, aggregated by /metrics) must be switched on before the app is imported.
SHM = "/dev/shm"  # noqa: S108 - RAM-backed and writable even with a read-only root fs
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    base = SHM if os.access(SHM, os.W_OK) else None
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="usbills-metrics-", dir=base)

from usbills_app.config import ConfigError, load_settings  # noqa: E402

try:
    _s = load_settings()
except ConfigError as e:
    print(f"usbills: configuration error: {e}", file=sys.stderr, flush=True)
    sys.exit(2)

bind = f"0.0.0.0:{_s.port}"
workers = _s.web_concurrency
threads = _s.gunicorn_threads
worker_class = "gthread"
# Load the model in the master, before fork: workers share it copy-on-write (2 workers: less
# total PSS, figures in docs/benchmarks.md, Service), and a bad bundle stops gunicorn once with
# one line instead of every worker failing to boot. Exception: INFERENCE_THREADS > 1 gives the
# runtime a thread pool, which fork does not copy (a forked worker can hang), so then each
# worker loads its own model after fork.
preload_app = _s.inference_threads == 1
if not preload_app:
    # Workers load the bundle after fork: check it here first (one thread, then dropped), so
    # a bad bundle stops gunicorn with its one line instead of workers failing to boot for ever.
    from usbills_app import runtime  # noqa: E402
    from usbills_app.bundle import BundleError  # noqa: E402

    try:
        runtime.load_model(_s.model_dir, threads=1, warm=False)
    except BundleError as e:
        print(f"usbills: model bundle error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)
timeout = 60  # the first request after start may decode a big photo on a cold cache
graceful_timeout = 20  # SIGTERM: finish in-flight requests, then exit (compose stop waits 30 s)
keepalive = 5  # behind nginx, which keeps upstream connections
worker_tmp_dir = SHM if os.access(SHM, os.W_OK) else None  # heartbeat files; read-only root fs
limit_request_line = 8190
accesslog = "-"
errorlog = "-"
loglevel = _s.log_level
logger_class = "usbills_app.gunicorn_logging.JsonLogger"
proc_name = "usbills"
control_socket_disable = True  # gunicornc is unused; its socket would need a writable $HOME


def when_ready(server):
    if not _s.shutdown_delay_s:
        return
    term = server.handle_term  # the arbiter looks its signal handlers up by name

    def handle_term():
        # On Swarm the task leaves DNS when it is told to stop, but the site nginx caches the
        # app's addresses for 2 s (resolver valid=2s): until then it may still connect here,
        # and a connection waiting in the backlog when the listener closes is reset (a 503).
        # Serving on for the delay before the graceful stop lets those requests in.
        server.log.info("SIGTERM: serving %.1f s more before stopping", _s.shutdown_delay_s)
        time.sleep(_s.shutdown_delay_s)
        term()

    server.handle_term = handle_term


def on_starting(server):
    # Stale files from a previous run would be summed into /metrics.
    d = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    d.mkdir(parents=True, exist_ok=True)
    for f in d.glob("*.db"):
        f.unlink()


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
