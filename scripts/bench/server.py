"""Service benchmarks: server time for a 12 MP phone JPEG and gunicorn worker memory.

1. In-process: usbills_app.predict_service.predict_image on a 4032x3024 JPEG with EXIF
   orientation 6 (decode with Image.draft + orient + resize + normalise + infer), p50/p90.
2. Real gunicorn (usbills_app/gunicorn.conf.py) with the bundle, WEB_CONCURRENCY workers,
   once with the model loaded before fork (--preload, the config's choice) and once after
   (--no-preload): RSS and PSS of master and workers after warm-up requests, and HTTP p50 for
   the 12 MP JPEG over loopback.
Bundle: MODEL_DIR if given, else a MobileNetV2-sized bundle built from scripts/bench-inference's
exported model. Report: artifacts/bench-server.{json,md}.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
CACHE = ROOT / ".cache" / "bench"
ART = ROOT / "artifacts"


def mobilenet_bundle(fmt: str) -> Path:
    model = CACHE / f"mobilenetv2.{fmt}"
    if not model.exists():
        subprocess.run([str(ROOT / "scripts/bench-inference"), "--runs", "20"], check=True)
    from tests.bundles import card

    dest = CACHE / f"bundle-{fmt}"
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(model, dest / f"model.{fmt}")
    c = card(f"model.{fmt}", fmt, 224, hashlib.sha256(model.read_bytes()).hexdigest())
    c.update(name="mobilenetv2-bench", version="bench")
    c["input"].update(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    (dest / "card.json").write_text(json.dumps(c, indent=2))
    return dest


def phone_jpeg() -> bytes:
    """12 MP, EXIF-rotated, with sensor-like noise so it weighs what a phone photo weighs
    (about 3.8 MB; a noise-free synthetic scene compresses to 0.3 MB and decodes faster)."""
    import numpy as np
    from PIL import Image

    from tests import synth

    base = np.asarray(synth.photo((4032, 3024), seed=1), np.int16)
    noise = np.random.default_rng(1).normal(0, 10, base.shape)
    img = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))
    return synth.jpeg(img, quality=90, exif_orientation=6)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(len(xs) * q))], 2)


def in_process(bundle: Path, data: bytes, runs: int) -> dict:
    from usbills_app import create_app
    from usbills_app.config import Settings
    from usbills_app.predict_service import predict_image

    app = create_app(Settings(model_dir=bundle))
    stages: dict[str, list[float]] = {"decode": [], "preprocess": [], "inference": [], "total": []}
    with app.app_context():
        for _ in range(5):
            predict_image(data)
        for _ in range(runs):
            t = predict_image(data)["timings_ms"]
            for k in stages:
                stages[k].append(t[k])
    return {k: {"min": pct(v, 0), "p50": pct(v, 0.5), "p90": pct(v, 0.9)}
            for k, v in stages.items()}


def mem(pid: int) -> dict:
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        k, _, rest = line.partition(":")
        if k in ("Rss", "Pss"):
            out[k.lower() + "_mb"] = round(int(rest.split()[0]) / 1024, 1)
    return out


def children(pid: int) -> list[int]:
    p = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(x) for x in p.read_text().split()] if p.exists() else []


def gunicorn(bundle: Path, data: bytes, workers: int, preload: bool, runs: int) -> dict:
    import requests

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    prom = tempfile.mkdtemp(prefix="bench-prom-")
    env = {**os.environ, "MODEL_DIR": str(bundle), "PORT": str(port),
           "WEB_CONCURRENCY": str(workers), "PROMETHEUS_MULTIPROC_DIR": prom}
    conf = "usbills_app/gunicorn.conf.py"
    if not preload:  # gunicorn has no CLI flag to turn preload off: a config that overrides it
        conf = str(Path(prom) / "no-preload.conf.py")
        Path(conf).write_text(
            "import runpy\n"
            f"globals().update(runpy.run_path({str(ROOT / 'usbills_app/gunicorn.conf.py')!r}))\n"
            "preload_app = False\n"
        )
    cmd = [sys.executable, "-m", "gunicorn", "-c", conf, "usbills_app:create_app()"]
    t0 = time.perf_counter()
    log = (ART / "bench-server-gunicorn.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                if requests.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.02)
            if proc.poll() is not None or time.perf_counter() - t0 > 60:
                raise RuntimeError("gunicorn did not become ready: see " + log.name)
        ready_s = time.perf_counter() - t0
        times = []
        for i in range(runs + 5):
            with requests.Session() as s:  # new connection: spread over workers
                t = time.perf_counter()
                r = s.post(url + "/api/v1/predict", data=data,
                           headers={"Content-Type": "image/jpeg"}, timeout=30)
                r.raise_for_status()
                if i >= 5:
                    times.append((time.perf_counter() - t) * 1000)
        ws = children(proc.pid)
        return {
            "preload": preload, "workers": workers, "ready_s": round(ready_s, 2),
            "http_p50_ms": pct(times, 0.5), "http_p90_ms": pct(times, 0.9),
            "master": mem(proc.pid), "workers_mem": [mem(w) for w in ws],
            "total_pss_mb": round(mem(proc.pid)["pss_mb"] + sum(mem(w)["pss_mb"] for w in ws), 1),
        }
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(prom, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--format", choices=["tflite", "onnx"], default="tflite")
    a = ap.parse_args()
    ART.mkdir(exist_ok=True)  # the gunicorn log goes there before the report
    env_dir = os.environ.get("MODEL_DIR")
    bundle = Path(env_dir).resolve() if env_dir else mobilenet_bundle(a.format)
    data = phone_jpeg()
    report = {
        "command": ((f"MODEL_DIR={env_dir} " if env_dir else "")
                    + f"scripts/bench-server --runs {a.runs} --workers {a.workers}"
                    + ("" if env_dir else f" --format {a.format}")),
        "bundle": str(bundle), "jpeg_bytes": len(data),
        "jpeg_size": "4032x3024 (12 MP), EXIF orientation 6",
        "load_average": os.getloadavg(),
        "in_process": in_process(bundle, data, a.runs),
        "gunicorn": [gunicorn(bundle, data, a.workers, p, a.runs) for p in (True, False)],
    }
    (ART / "bench-server.json").write_text(json.dumps(report, indent=2))
    ip = report["in_process"]
    load = ", ".join(f"{x:.1f}" for x in report["load_average"])
    lines = [f"Command: `{report['command']}`; bundle `{bundle.name}`; {report['jpeg_size']}, "
             f"{len(data) / 1e6:.1f} MB JPEG; load average at start {load}", "",
             "| stage (in process) | min ms | p50 ms | p90 ms |", "|---|---|---|---|"]
    lines += [f"| {k} | {v['min']} | {v['p50']} | {v['p90']} |" for k, v in ip.items()]
    lines += ["", "| gunicorn | ready after | HTTP p50 | HTTP p90 | master RSS/PSS "
              "| each worker RSS/PSS | total PSS |", "|---|---|---|---|---|---|---|"]
    for g in report["gunicorn"]:
        ws = ", ".join(f"{w['rss_mb']}/{w['pss_mb']}" for w in g["workers_mem"])
        lines.append(
            f"| {'load before fork (--preload)' if g['preload'] else 'load after fork'}, "
            f"{g['workers']} workers | {g['ready_s']} s | {g['http_p50_ms']} ms "
            f"| {g['http_p90_ms']} ms | {g['master']['rss_mb']}/{g['master']['pss_mb']} MB "
            f"| {ws} MB | {g['total_pss_mb']} MB |")
    md = "\n".join(lines)
    (ART / "bench-server.md").write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
