"""The cart benchmark runs end to end (three carts on the dev server) and its figures add up.

No timing is asserted: machines are noisy. What is asserted is what cannot vary: every phase
finishes, every rate is positive, and the history counts the benchmark reports are the ones the
workflow's design promises (ten minor edits cost what one costs).
"""

import json
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from bench.cart_throughput import BenchConfig, format_report, parse_args, run_bench, write_json

pytestmark = pytest.mark.e2e


def test_the_command_line_defaults_run_carts_idle_for_real() -> None:
    config, json_path = parse_args([])
    assert (config.carts, config.concurrency, config.abandon_after) == (50, 10, "10s")
    assert config.backdate.total_seconds() == 0 and config.lead == 10
    assert json_path is None

    config, json_path = parse_args(["--carts", "7", "--lead", "2", "--json", "out.json"])
    assert config.carts == 7 and config.backdate.total_seconds() == 8
    assert json_path == Path("out.json")


async def test_the_benchmark_runs_end_to_end(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    config = BenchConfig(
        carts=3,
        concurrency=3,
        lead_seconds=2,  # events backdated 8s: each cart idles 2s, not the cadence's 10s
        step_gap_seconds=1,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'bench.db'}",
        timeout_seconds=45,
    )

    results = await run_bench(config, env=dev_env, log=lambda _: None)

    for side in (results.ours, results.bare):
        assert side.carts == 3
        assert side.ingest_carts_per_second > 0 and side.carts_per_second > 0
        assert side.work_carts_per_second > 0 and side.cpu_ms_per_cart > 0
        assert side.makespan_seconds >= config.scheduled_seconds  # no timer fires early
    assert results.ratios["carts_per_second"] is not None

    costs = results.histories
    bought = costs["bought before abandonment"]
    assert bought.complete and (bought.started, bought.signals, bought.activities) == (1, 1, 0)
    one, ten = costs["whole cadence, 1 edit"], costs["whole cadence, 10 edits"]
    assert one.complete and (one.started, one.signals, one.activities) == (
        1,
        1,
        4,
    )  # nudge, 3 sends
    assert one.timers == 3 and one.actions <= 2 + 2 * 4  # issue 11: 2 + 2 per executed step
    assert ten == one
    assert results.history_ratios["events_10_edits_over_1"] == 1.0
    assert results.history_ratios["actions_10_edits_over_1"] == 1.0
    assert costs["10 edits past the grace"].actions >= one.actions
    bare = costs["bare workflow"]
    assert (bare.signals, bare.timers, bare.activities, bare.upserts) == (0, 3, 4, 0)

    report = format_report(results)
    assert "ours/bare" in report and "10 edits / 1 edit" in report
    write_json(results, tmp_path / "bench.json")
    written = json.loads((tmp_path / "bench.json").read_text())
    assert written["ours"]["carts"] == 3
    assert written["histories"]["whole cadence, 1 edit"]["actions"] == one.actions
