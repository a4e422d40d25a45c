"""The research pages in headless Chromium against a real daphne: submit a grid search from the
form, watch its progress bar move through the stream while the research worker's service runs
it, open the result and see the heatmap, the equity/drawdown charts and the trade markers."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tests.helpers import ARTIFACTS, chromium, off_loop

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def researcher(market):
    get_user_model().objects.create_user("rita", password="correct-horse-9")


def _work_the_queue():
    """What the `research` worker does with the queued run."""
    from strategies.research.models import ResearchRun
    from strategies.research.services import run_execute

    run = ResearchRun.objects.get(status="queued")
    return run_execute(run_id=run.pk).status


def test_research_page_submit_progress_heatmap_and_markers(researcher, daphne_factory):
    web = daphne_factory()
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(web.base + "/research/")
        page.fill("#id_username", "rita")
        page.fill("#id_password", "correct-horse-9")
        page.click("#login-submit")
        page.wait_for_selector("#connection.on", timeout=10_000)

        # A bad range is refused with the parameter named, and nothing is queued.
        page.select_option("#plugin", "sma_crossover")
        page.fill("input[name='param:fast']", "9:2:1")
        page.click("#submit-run")
        page.wait_for_selector("#form-message.down", timeout=5_000)
        assert "grid.fast" in page.inner_text("#form-message")

        page.fill("input[name='symbols']", "SPY")
        page.fill("input[name='days']", "20")
        page.fill("input[name='param:fast']", "2:10:2")
        page.fill("input[name='param:slow']", "12,16,20,24")
        page.fill("input[name='constraints']", "fast < slow")
        page.click("#submit-run")
        page.wait_for_selector("#runs tbody tr", timeout=5_000)
        row = page.locator("#runs tbody tr").first
        assert "queued" in row.inner_text() and "optimize" in row.inner_text()

        # The research worker runs it: the row's status and progress bar follow live.
        assert off_loop(_work_the_queue) == "done"
        page.wait_for_function(
            "() => document.querySelector('#runs tbody tr td:nth-child(5)').textContent === 'done'",
            timeout=5_000,
        )
        assert page.locator("#runs tbody tr progress").first.get_attribute("max") == "1"
        assert page.evaluate("document.querySelector('#runs tbody tr progress').value") == 1
        page.screenshot(path=str(ARTIFACTS / "research.png"), full_page=True)

        page.click("#runs tbody tr a")
        page.wait_for_selector("#result:not([hidden])", timeout=10_000)
        # The heatmap: fast across, slow down, a coloured cell per allowed combination.
        page.wait_for_selector("#heatmap table.heatmap", timeout=5_000)
        assert page.locator("#heatmap td[data-value]").count() == 20  # 5 fast x 4 slow values
        assert "sharpe over fast × slow" in page.inner_text("#heatmap-title")
        # Charts drawn, the price chart with the trades' markers and both SMA lines.
        for chart in ("#equity-chart", "#drawdown-chart", "#price-chart"):
            assert page.locator(f"{chart} canvas").count() > 0
        markers = int(page.get_attribute("#price-legend", "data-markers"))
        assert markers > 0
        assert "SMA" in page.inner_text("#price-legend")
        assert page.locator("#ranking tbody tr").count() > 0
        assert page.locator("#metrics tr[data-metric=sharpe]").count() == 1
        page.screenshot(path=str(ARTIFACTS / "research-result.png"), full_page=True)

        # A walk-forward from the same form: its table lists each window's choice and both
        # scores.
        page.goto(web.base + "/research/")
        page.wait_for_selector("#connection.on", timeout=10_000)
        page.select_option("#plugin", "sma_crossover")
        page.fill("input[name='symbols']", "SPY")
        page.fill("input[name='days']", "30")
        page.fill("input[name='param:fast']", "2,4")
        page.fill("input[name='param:slow']", "12,24")
        page.check("input[name='walk_forward']")
        page.fill("input[name='train_days']", "14")
        page.fill("input[name='test_days']", "5")
        page.click("#submit-run")
        page.wait_for_function(
            "() => document.querySelector('#runs tbody tr td:nth-child(2)').textContent"
            " === 'walk-forward'",
            timeout=5_000,
        )
        assert off_loop(_work_the_queue) == "done"
        page.click("#runs tbody tr a")
        page.wait_for_selector("#walk-forward-card:not([hidden])", timeout=10_000)
        assert page.locator("#walk-forward tbody tr").count() >= 2
        assert "out-of-sample mean" in page.inner_text("#walk-forward-summary")
        page.screenshot(path=str(ARTIFACTS / "research-walk-forward.png"), full_page=True)
        assert errors == []
