"""The rendering process retailers' templates run in (``winback.messaging.template_runner``)."""

from winback.messaging.template_runner import SAMPLE_CONTEXT, TemplateRunner
from winback.messaging.templates import TemplateSource


async def test_warm_up_starts_the_process_the_first_render_then_uses() -> None:
    runner = TemplateRunner()
    try:
        await runner.warm_up()  # what a starting worker does, so its first nudge does not wait
        pool = runner._pool
        assert pool is not None
        processes = list(pool._processes.values())  # type: ignore[attr-defined]
        assert processes and all(p.is_alive() for p in processes)

        rendered = await runner.render(
            TemplateSource("sms", "Hola {{ shopper_name }}"), SAMPLE_CONTEXT
        )

        assert rendered.body.startswith("Hola")
        assert runner._pool is pool  # the same process answered
    finally:
        runner.close()
