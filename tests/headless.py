"""Headless Chromium driven over the DevTools protocol on a pipe: open a page, evaluate
JavaScript (awaiting promises), read values back. Standard library only; real time, so
timings measured in the page are true ones (unlike --virtual-time-budget)."""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--remote-debugging-pipe"]


class Chromium:
    """One browser with one page: ``Chromium().open(url)``, then ``evaluate(js)``; a context manager."""

    def __init__(self) -> None:
        if CHROMIUM is None:
            raise RuntimeError("Chromium is not installed (Debian: apt install chromium)")
        self._profile = tempfile.mkdtemp(prefix="srlib-chromium-")
        browser_reads, we_write = os.pipe()  # commands: Chromium reads them on its fd 3
        we_read, browser_writes = os.pipe()  # replies: Chromium writes them on its fd 4

        def wire() -> None:  # in the child: move both ends out of the way, then onto 3 and 4
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (browser_reads, browser_writes)]
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        self._process = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
                                         close_fds=False, preexec_fn=wire, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(browser_reads)
        os.close(browser_writes)
        self._out = os.fdopen(we_write, "wb", buffering=0)
        self._in = os.fdopen(we_read, "rb", buffering=0)
        self._buffer, self._id, self._session = b"", 0, None

    def _call(self, method: str, params: dict | None = None, timeout: float = 120) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if self._session is not None:
            message["sessionId"] = self._session
        self._out.write(json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" not in self._buffer:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"Chromium did not answer {method} within {timeout} s")
                chunk = self._in.read(1 << 16)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                self._buffer += chunk
            line, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(line)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def open(self, url: str, timeout: float = 60) -> None:
        """Open ``url`` in a new page and wait until it has loaded."""
        target = self._call("Target.createTarget", {"url": url})["targetId"]
        self._session = self._call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        # the new page starts as about:blank, already "complete": wait for the document asked for
        self.wait(f"location.href === {json.dumps(url)} && document.readyState === 'complete'", timeout)

    def evaluate(self, expression: str, timeout: float = 120):
        """The value of a JavaScript expression in the page (a promise is awaited)."""
        result = self._call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                 "returnByValue": True, "timeout": timeout * 1000}, timeout + 5)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise RuntimeError(details.get("exception", {}).get("description") or details.get("text"))
        return result["result"].get("value")

    def wait(self, condition: str, timeout: float = 120) -> None:
        """Poll until the JavaScript ``condition`` is true."""
        deadline = time.monotonic() + timeout
        while not self.evaluate(f"!!({condition})"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"still not true after {timeout} s: {condition}")
            time.sleep(0.05)

    def choose_file(self, data: str, name: str, kind: str, selector: str = "input[type=file]") -> None:
        """Put a file (base64 ``data``) into the page's file input, as a reader choosing it would."""
        self.evaluate(f"""(() => {{
          const bytes = Uint8Array.from(atob({json.dumps(data)}), (ch) => ch.charCodeAt(0));
          const list = new DataTransfer();
          list.items.add(new File([bytes], {json.dumps(name)}, {{ type: {json.dumps(kind)} }}));
          const input = document.querySelector({json.dumps(selector)});
          input.files = list.files;
          input.dispatchEvent(new Event("change"));
        }})()""")

    def close(self) -> None:
        self._process.kill()
        self._process.wait()
        for stream in (self._out, self._in):
            stream.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def page_file(folder: Path, body: str) -> str:
    """A file:// URL of an HTML document holding ``body``."""
    path = Path(folder) / "page.html"
    path.write_text(f'<!doctype html><html><head><meta charset="utf-8"></head><body>{body}</body></html>',
                    encoding="utf-8")
    return path.as_uri()
