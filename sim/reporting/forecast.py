"""Writing a forecast's folder (``modu forecast``): tables, one figure, ``report.md`` and ``manifest.json`` last."""

from __future__ import annotations

from pathlib import Path

from sim.inference.data import documented_counts
from sim.inference.forecasting import DRIVER_CORRELATION, Forecast
from sim.reporting.files import atomic_write, manifest, output_folder, write_csv, write_json
from sim.reporting.palette import HIGHLIGHT, INK
from sim.reporting.style import PAGE_WIDTH, plt, save_figure, value_axis, year_axis
from sim.reporting.text import count, markdown_table, percentile_name


def plot_forecasts(result: Forecast) -> plt.Figure:
    """Each city's firms over the years: median and 90% band over draws × replications, documented counts as dots.

    One panel per city, each on its own axis from 0; a panel whose interval the prior or an assumption drives
    says so in its title.
    """
    bands = result.bands()
    flags = result.to_df().set_index("city")
    documented = documented_counts(result.scenario)
    cities = result.cities
    ncols = 4 if len(cities) > 6 else 3
    nrows = -(-len(cities) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(PAGE_WIDTH, 2.2 * nrows + 0.8), squeeze=False, layout="constrained")
    for ax, city in zip(axes.flat, cities, strict=False):
        rows = bands[bands.city == city]
        ax.fill_between(rows.year, rows.lo, rows.hi, color=INK, alpha=0.2, linewidth=0)
        ax.plot(rows.year, rows["median"], color=INK, linewidth=1.8)
        known = documented[documented.city == city]
        ax.scatter(known.year, known.firms, color=HIGHLIGHT, edgecolor="k", zorder=5, s=22)
        marks = [m for m, on in (("prior", flags.loc[city, "prior_driven"]),
                                 ("assumption", flags.loc[city, "assumption_driven"])) if on]
        ax.set_title(city + (f" ({' and '.join(marks)}-driven)" if marks else ""), fontsize=8.5, pad=3)
        ax.set_ylim(bottom=0)
        value_axis(ax, broken=False)
        year_axis(ax)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3, linewidth=0.4)
    for ax in axes.flat[len(cities):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("AI firms", fontsize=8)
    fig.suptitle(f"Forecast of {result.scenario.name}: median and 90% predictive interval "
                 f"({percentile_name((0.05, 0.95), 'draws × replications')}); dots: documented", fontsize=9.5)
    return fig


def forecast_report(result: Forecast, figures: bool, options: dict) -> str:
    """``report.md``: what the forecast is, the table with flags, and what drives each interval."""
    table = result.to_df()
    end = result.years[-1]
    n_draws, n_reps = result.firms.shape[:2]
    flagged = table[table.prior_driven | table.assumption_driven]
    text = [f"# Forecast: {result.scenario.name} to the end-{end - 1} stock (model time {end})", "",
            f"Every city's AI-related enterprises, year by year, over {n_draws} draws × {n_reps} replication"
            f"{'' if n_reps == 1 else 's'}: "
            f"{result.draws.source}. Median and 90% predictive interval "
            "(the 5th and 95th percentiles of the runs; counts never below 0). Dots are documented counts.", "",
            "A city's interval is **prior-driven** when an estimate the data leave at its prior (`not constrained` "
            "in the calibration's posterior table) drives it, and **assumption-driven** when a deep uncertainty "
            f"does (|Spearman ρ| ≥ {DRIVER_CORRELATION} over the draws between the quantity and the city's count at "
            "the end): it then says what the model and those assumptions imply, not what the documents show.", ""]
    shown = table.assign(**{"90% predictive interval": [f"{count(lo)} to {count(hi)}" for lo, hi in
                                                         zip(table.lo, table.hi, strict=True)]})
    text += [markdown_table(shown[["city", "median", "90% predictive interval", "prior_driven",
                                   "assumption_driven", "driven_by"]].rename(
        columns={"median": f"median, end-{end - 1}", "prior_driven": "prior-driven",
                 "assumption_driven": "assumption-driven", "driven_by": "driven by (ρ, kind)"})), ""]
    if len(flagged):
        text.append(f"{len(flagged)} of {len(table)} forecasts are driven by the prior or an assumption: "
                    + ", ".join(flagged.city) + ".")
    else:
        text.append("No forecast is driven by the prior or an assumption at this threshold.")
    text.append("")
    if figures:
        text += ["![forecasts](figures/forecasts.png)", ""]
    text += ["Files: `forecasts.csv` (each city at the end, with its flags), `bands.csv` (every city and year), "
             "`drivers.csv` (ρ of every drawn quantity with every city), `draws.csv` (the drawn quantities).", "",
             "## Reproduce", "", "```bash", str(options.get("reproduce", "")), "```", ""]
    return "\n".join(text)


def write_forecast(result: Forecast, out: Path, figures: bool = True, **fields: object) -> list[str]:
    """Write ``forecasts.csv``, ``bands.csv``, ``drivers.csv``, ``draws.csv``, the figure, report and manifest."""
    with output_folder(out):
        tables = {"forecasts": result.to_df(), "bands": result.bands(), "drivers": result.drivers(),
                  "draws": result.draws.quantities.assign(
                      mean_firms_at_end=result.firms[:, :, -1, :].sum(axis=-1).mean(axis=1))}
        for name, frame in tables.items():
            write_csv(out / f"{name}.csv", frame)
        written = [f"{name}.csv" for name in tables]
        if figures:
            written += [str(p.relative_to(out)) for p in save_figure(plot_forecasts(result), out / "figures",
                                                                   "forecasts")]
        report = forecast_report(result, figures, fields)
        atomic_write(out / "report.md", lambda h: h.write(report))
        written.append("report.md")
        write_json(out / "manifest.json", manifest(
            out, written, scenario=result.scenario.resolved(), scenario_hash=result.scenario.digest(),
            draws_source=result.draws.source, assumptions=list(result.draws.assumptions),
            years=result.years, draws=int(result.firms.shape[0]), replications=int(result.firms.shape[1]),
            seed_rule="SeedSequence(seed, spawn_key=(draw, replication))", **fields))
    return [*written, "manifest.json"]

