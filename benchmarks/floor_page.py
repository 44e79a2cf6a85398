"""The page framework's floor: a Solara page whose Step does nothing but count, for ``bench_page.py --floor``.

It has what the class benchmark watches on Modu's page (a Step button, the status ``step N of STEPS``
and one ``.modu-chart`` element whose ``data-title`` is the year) and nothing else: no model, no
charts. What a press of Step costs the server here is what Solara costs per click before any of
Modu's work. Served with ``solara run benchmarks/floor_page.py``.
"""

import solara

START, STEPS_PER_YEAR, STEPS = 2017, 4, 24
"""The baseline scenario's calendar, so the benchmark's probe reads this page as it reads Modu's."""


@solara.component
def Page():  # noqa: N802 (Solara's name for the page)
    """A Step button, the status, and an element titled with the year."""
    step = solara.use_reactive(0)
    solara.Button("Step", on_click=lambda: step.set(step.value + 1))
    solara.Text(f"step {step.value} of {STEPS}")
    solara.v.Html(tag="div", class_="modu-chart", attributes={"data-title": f"{START + step.value / STEPS_PER_YEAR:.2f}"})
