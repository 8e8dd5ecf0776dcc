"""Install a rendered config only if `nginx -t` accepts it; otherwise keep the last good one."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

log = logging.getLogger("proxygen.nginx")


class NginxConfig:
    def __init__(self, conf_path: str | Path, nginx: str = "nginx") -> None:
        self.path = Path(conf_path)
        self.nginx = nginx
        self.current: str | None = None

    def test(self) -> tuple[bool, str]:
        proc = subprocess.run([self.nginx, "-e", "stderr", "-t", "-q"],
                              capture_output=True, text=True, check=False)
        return proc.returncode == 0, (proc.stderr or proc.stdout).strip()

    def install(self, text: str) -> bool:
        """Write text as the live config if nginx accepts it. True when it was installed."""
        if text == self.current:
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        previous = self.path.read_text() if self.path.exists() else None
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.path)
        ok, out = self.test()
        if ok:
            self.current = text
            return True
        log.error("generated config rejected by nginx -t, keeping the last good one: %s",
                  out.replace("\n", " | "))
        if previous is not None:
            tmp.write_text(previous)
            os.replace(tmp, self.path)
        else:
            self.path.unlink(missing_ok=True)
        return False
