"""Helpers for the browser test: serve ``modu app`` on a free local port and drive headless Chromium.

Chromium is Debian's (``/usr/bin/chromium``, installed by .ci/run), driven by
Playwright's Python package; no browser is ever downloaded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("MODU_CHROMIUM", "/usr/bin/chromium")
"""The browser the test drives (Debian's package)."""

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
"""Flags for a quiet, offline, sandbox-free headless run (a fresh --user-data-dir is added per run)."""


def chromium_missing() -> str | None:
    """Why the browser test cannot run here, or None when it can."""
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run installs it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright's Python package is missing (pip install -e '.[browser]')"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served_app(*args: str, timeout: float = 60.0, output: Path | None = None,
               command: tuple[str, ...] = ("-m", "sim", "app")) -> Iterator[str]:
    """Run ``modu app ARGS --host 127.0.0.1 --port N`` and yield its URL; stop that process afterwards.

    The server's output goes to the file ``output`` when given (to read after the block). ``command``
    replaces ``-m sim app`` (``("-m", "solara", "run", FILE)`` serves another Solara page).
    """
    port = free_port()
    log = open(output, "w+b") if output else tempfile.TemporaryFile()  # closed in finally
    proc = subprocess.Popen([sys.executable, *command, *args, "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"modu app did not come up at {url}:\n{log.read().decode(errors='replace')[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@contextlib.contextmanager
def browser_page(width: int = 1400, height: int = 1000) -> Iterator[object]:
    """A Playwright page in headless Chromium with a fresh profile."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True,
            viewport={"width": width, "height": height})
        try:
            yield context.new_page()
        finally:
            context.close()


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """Headless Chromium (Playwright's Browser) for many pages, each opened in its own context (its own cookies)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


PROBE = """([stepText, year]) => {
  const charts = [...document.querySelectorAll('.modu-chart')];
  const step = [...document.querySelectorAll('button')].find((b) => b.textContent.trim() === 'Step');
  const probe = window.__moduStep = {clicked: Date.now(), drawn: null, charts: charts.length};
  const done = () => document.body.textContent.includes(stepText)
    && charts.every((chart) => (chart.dataset.title || '').includes(year));
  const observer = new MutationObserver(() => {
    if (probe.drawn === null && done()) {
      probe.drawn = Date.now();
      observer.disconnect();
    }
  });
  observer.observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true,
                                   attributeFilter: ['data-title']});
  step.click();
}"""
"""Press a page's Step button and note, in the page, when its status shows the new step and every chart has drawn
the new year (``window.__moduStep``: ``clicked`` and ``drawn`` in ms since 1970, by the machine's one clock)."""


@dataclass
class Student:
    """One student's page in its own browser context, with what its console and network reported."""

    page: Any
    console: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Console warnings and errors, and requests that failed (the page must work offline)."""
        return [line for line in self.console if line.startswith(("warning", "error"))] + [
            f"request failed: {url}" for url in self.failed]


ECHARTS_STUB = ("define([], function () { var chart = {setOption: function () {}, resize: function () {}, "
                "dispose: function () {}}; return {registerMap: function () {}, init: function () { return chart; }}; });")
"""An ECharts that draws nothing, for pages whose drawing would happen on a student's own machine."""


def open_students(browser: Any, url: str, n: int, draw: bool = True, timeout: float = 300.0) -> list[Student]:
    """Open ``n`` pages of the served page, each in its own context, and wait until each shows step 0 with its
    charts made. The pages load together, as a class would open them.

    Args:
        browser: the Chromium of :func:`chromium`.
        url: the page's address.
        n: how many pages.
        draw: False gives the pages :data:`ECHARTS_STUB` for ECharts: to the server they are pages like any
            other (the same session, messages and clicks), but their charts cost this machine nothing, as a
            classmate's page drawn on their own computer would.
        timeout: seconds to wait for each page.
    """  # noqa: D205
    students = []
    for _ in range(n):
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        if not draw:
            context.route("**/echarts@*/dist/echarts.min.js",
                          lambda route: route.fulfill(body=ECHARTS_STUB, content_type="application/javascript"))
        page = context.new_page()
        student = Student(page)
        page.on("console", lambda message, s=student: s.console.append(f"{message.type}: {message.text}"))
        page.on("requestfailed", lambda request, s=student: s.failed.append(request.url))
        page.goto(url, wait_until="commit")
        students.append(student)
    for student in students:
        student.page.get_by_text("step 0 of").wait_for(timeout=timeout * 1000)
        student.page.wait_for_function("() => { const c = [...document.querySelectorAll('.modu-chart')];"
                                       " return c.length > 0 && c.every((x) => x.dataset.title); }",
                                       timeout=timeout * 1000, polling=100)
    return students


def press_step_together(students: list[Student], step: int, steps: int, year: str, timeout: float = 600.0) -> list[float]:
    """Press Step on every page at once and return each page's latency, in seconds, from its click to its new plots.

    A page's plots are new when its status shows ``step {step} of {steps}`` and every chart's title
    shows ``year``. The clicks go out one page after another without waiting (their spread is the
    few milliseconds a click takes to dispatch).

    Raises:
        AssertionError: naming the first page that did not show the new step within ``timeout`` (a lost click).
    """
    for student in students:
        student.page.evaluate(PROBE, [f"step {step} of {steps}", year])
    latencies = []
    for i, student in enumerate(students):
        try:
            student.page.wait_for_function("() => window.__moduStep.drawn !== null", timeout=timeout * 1000,
                                           polling=50)
        except Exception as error:  # Playwright's timeout
            raise AssertionError(f"page {i + 1} of {len(students)} did not show step {step} ({error})") from None
        probe = student.page.evaluate("window.__moduStep")
        latencies.append((probe["drawn"] - probe["clicked"]) / 1000)
    return latencies


def cpu_seconds(processes: list[Any]) -> float:
    """User and system CPU seconds the (psutil) processes have used so far (those that have ended count 0)."""
    import psutil

    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            total += sum(process.cpu_times()[:2])
    return total


@dataclass
class ClassResult:
    """What :func:`run_class` measured. Latencies in seconds, from a click to the page's new step and charts.

    Attributes:
        one: one page alone, each press of Step.
        together: every page at every press, all pages drawn by this machine's browser.
        classroom: the one page drawn here at every press, with the other sessions pressing too but drawn
            elsewhere (:data:`ECHARTS_STUB`), as in a class where each student's browser is on their own computer.
        opening: seconds to open the pages until each showed its charts.
        load: the machine's load average (1 minute) before the class.
        server_cpu: CPU seconds of the server per page and step while all pages drew here.
        browser_cpu: CPU seconds of the browser (and its driver) per page and step, the same while.
        lost: pages that did not end on the step they were sent to.
        problems: console warnings and errors and failed requests of the pages that drew their charts.
        server_errors: tracebacks and errors in the server's log.
    """

    one: list[float]
    together: list[float]
    classroom: list[float]
    opening: float
    load: float
    server_cpu: float
    browser_cpu: float
    lost: int
    problems: list[str]
    server_errors: list[str]

    @property
    def ok(self) -> bool:
        """No lost click, no console problem, no server error."""
        return not (self.lost or self.problems or self.server_errors)


def run_class(scenario: str, pages: int, rounds: int, classroom: bool = True) -> ClassResult:
    """Serve ``modu app SCENARIO`` and measure a class pressing Step: one page alone, then ``pages`` pages together.

    First one page presses Step ``rounds`` times; then ``pages`` pages, each in its own browser context,
    press together ``rounds`` times; then (``classroom``) ``pages`` sessions again, all but one with
    :data:`ECHARTS_STUB`, and the latencies of the one drawn here.
    """
    import psutil

    from sim.scenario import load_scenario

    spec = load_scenario(scenario)
    steps, start, per_year = spec.time.steps, spec.time.start, spec.time.steps_per_year
    if rounds > steps:
        raise ValueError(f"{rounds} rounds: the scenario has {steps} steps")
    lost = 0

    def press(students: list[Student], watched: list[Student]) -> list[float]:
        """``rounds`` presses of Step on every page together; the latencies of the ``watched`` pages."""
        nonlocal lost
        latencies = []
        for step in range(1, rounds + 1):
            times = press_step_together(students, step, steps, f"{start + step / per_year:.2f}")
            latencies += [t for student, t in zip(students, times, strict=True) if student in watched]
        lost += sum(s.page.get_by_text(f"step {rounds} of {steps}").count() != 1 for s in students)
        return latencies

    with tempfile.TemporaryDirectory() as tmp, served_app(scenario, output=Path(tmp) / "server.log") as url, \
            chromium() as browser:
        server = [p for p in psutil.Process().children(recursive=True) if "app" in p.cmdline()]

        def cpu() -> tuple[float, float]:
            """CPU seconds so far of the server and of everything else this process started (browser, driver)."""
            others = [p for p in psutil.Process().children(recursive=True) if p not in server]
            return cpu_seconds(server), cpu_seconds(others)

        alone = open_students(browser, url, 1)
        one = press(alone, alone)
        load = os.getloadavg()[0]
        opened = time.perf_counter()
        drawing = open_students(browser, url, pages)
        opening = time.perf_counter() - opened
        before = cpu()
        together = press(drawing, drawing)
        after = cpu()
        problems = [p for s in alone + drawing for p in s.problems()]
        for student in alone + drawing:
            student.page.context.close()
        in_class: list[float] = []
        if classroom:
            classmates = open_students(browser, url, pages - 1, draw=False) + open_students(browser, url, 1)
            in_class = press(classmates, classmates[-1:])
            problems += classmates[-1].problems()  # the others cannot draw, by design
        log = (Path(tmp) / "server.log").read_text(errors="replace")
    server_cpu, browser_cpu = ((b - a) / (pages * rounds) for a, b in zip(before, after, strict=True))
    return ClassResult(one, together, in_class, opening, load, server_cpu, browser_cpu, lost, problems,
                       [line for line in log.splitlines() if "Traceback" in line or line.startswith("ERROR")])
