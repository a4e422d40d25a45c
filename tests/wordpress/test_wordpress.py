"""The WordPress plugin in a real WordPress (Debian's 6.1 on MariaDB, `php -S`) against the real
backend (daphne): PHPUnit in the live site, application-password calls over HTTP, orders through
WordPress, the backend's `wordpress` market-data provider reading this site, the dashboard in
headless Chromium, and uninstall."""

from __future__ import annotations

import base64
import json
import subprocess
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from tests.helpers import ARTIFACTS, chromium, off_loop
from trading.models import Order, OrderSource

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PHPUNIT_DIR = Path(__file__).resolve().parent / "phpunit"


def _app_password(wp_site, login: str, role_caps: list[str]) -> tuple[str, str]:
    """A user with exactly these plugin capabilities, and an application password for it."""
    out = wp_site.php_json(
        f"""
        $login = {json.dumps(login)};
        $user = get_user_by('login', $login);
        $id = $user ? $user->ID : wp_insert_user(array('user_login' => $login,
            'user_pass' => wp_generate_password(), 'user_email' => $login . '@example.com',
            'role' => 'subscriber'));
        $u = new WP_User($id);
        foreach ({json.dumps(role_caps)} as $cap) {{ $u->add_cap($cap); }}
        list($password) = WP_Application_Passwords::create_new_application_password(
            $id, array('name' => 'pytest ' . wp_generate_password(4, false)));
        echo wp_json_encode(array($login, $password));
        """
    )
    return out[0], out[1]


def _only_order():
    order = Order.objects.get(type="market", symbol="QQQ")
    return order.source, order.qty


def _fill_in_worker(symbol: str) -> None:
    """What a strategy in the Celery worker does: the order service, no web process."""
    from trading.services import order_submit

    order_submit(symbol=symbol, side="buy", qty=Decimal("2"))


def _skip_event_seq(count: int) -> None:
    """As if `count` events were published that no client received."""
    from streaming.redis import client, seq_key

    client().incrby(seq_key("events"), count)


def _limit_order_status() -> str:
    return Order.objects.get(type="limit").status


def _halted() -> bool:
    from trading.selectors import kill_switch_get

    return kill_switch_get().engaged


def _basic(login: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{login}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_phpunit_suite_in_the_live_site(wp_site, backend, untrusted_tls):
    ARTIFACTS.mkdir(exist_ok=True)
    junit = wp_site.log_dir / "phpunit.xml"
    result = subprocess.run(
        ["phpunit", "-c", str(PHPUNIT_DIR / "phpunit.xml"), "--log-junit", str(junit)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={
            "PATH": "/usr/bin:/bin",
            "TRP_WP_DIR": str(wp_site.root),
            "TRP_WP_HOST": f"127.0.0.1:{wp_site.port}",
            "TRP_BACKEND_URL": backend.base,
            "TRP_TRADE_KEY": backend.trade_key,
            "TRP_READ_KEY": backend.read_key,
            "TRP_UNTRUSTED_TLS_URL": untrusted_tls.url,
        },
    )
    report = result.stdout[-6000:] + result.stderr[-3000:]
    assert result.returncode == 0, report
    suite = ET.parse(junit).getroot().find("testsuite")
    tests, failures, errors = (int(suite.get(k)) for k in ("tests", "failures", "errors"))
    assert tests >= 30 and failures == 0 and errors == 0, report
    # What the backend saw: the permission test's order went through once, labelled wordpress.
    orders = Order.objects.filter(client_order_id="phpunit-permissions")
    assert orders.count() == 1
    assert orders.get().source == OrderSource.WORDPRESS
    assert Order.objects.filter(symbol="ZZZZ").count() == 0


def test_application_passwords_and_one_order_per_client_order_id(wp_site, backend):
    trader = _basic(*_app_password(wp_site, "http_trader", ["trp_view", "trp_trade"]))
    viewer = _basic(*_app_password(wp_site, "http_viewer", ["trp_view"]))

    positions = requests.get(f"{wp_site.rest}/positions", headers=viewer, timeout=10)
    assert positions.status_code == 200, positions.text
    assert isinstance(positions.json()["results"], list)

    wrong = _basic("http_viewer", "abcd efgh ijkl mnop qrst uvwx")
    refused = requests.get(f"{wp_site.rest}/positions", headers=wrong, timeout=10)
    assert refused.status_code == 401
    assert requests.get(f"{wp_site.rest}/positions", timeout=10).status_code == 401

    order = {"symbol": "SPY", "side": "buy", "qty": "2", "client_order_id": "wp-http-once"}
    denied = requests.post(f"{wp_site.rest}/orders/submit", json=order, headers=viewer, timeout=10)
    assert denied.status_code == 403
    assert Order.objects.count() == 0

    first = requests.post(f"{wp_site.rest}/orders/submit", json=order, headers=trader, timeout=10)
    again = requests.post(f"{wp_site.rest}/orders/submit", json=order, headers=trader, timeout=10)
    assert first.status_code == 200, first.text
    assert again.status_code == 200, again.text
    assert first.json()["id"] == again.json()["id"]
    assert first.json()["status"] == "filled"
    stored = Order.objects.get()
    assert stored.client_order_id == "wp-http-once"
    assert stored.source == OrderSource.WORDPRESS
    assert stored.qty == Decimal("2")

    # The fill is readable through WordPress, by id too.
    trades = requests.get(f"{wp_site.rest}/trades", headers=viewer, timeout=10).json()["results"]
    assert [t["symbol"] for t in trades] == ["SPY"]
    one = requests.get(f"{wp_site.rest}/trades/{trades[0]['id']}", headers=viewer, timeout=10)
    assert one.status_code == 200 and one.json()["id"] == trades[0]["id"]

    # Cancel through WordPress: a resting limit order, then DELETE orders/{id}.
    limit = dict(order, client_order_id="wp-http-limit", type="limit", limit_price="1.00")
    resting = requests.post(f"{wp_site.rest}/orders/submit", json=limit, headers=trader, timeout=10)
    assert resting.status_code == 200, resting.text
    canceled = requests.delete(
        f"{wp_site.rest}/orders/{resting.json()['id']}", headers=trader, timeout=10
    )
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled"
    assert Order.objects.get(client_order_id="wp-http-limit").status == "canceled"

    # A bracket through WordPress: its legs come back nested, and the backend's rules apply.
    from marketdata.selectors import last_price

    price = last_price("SPY")
    bracket = dict(
        order,
        client_order_id="wp-http-bracket",
        order_class="bracket",
        take_profit={"limit_price": str(price + 5)},
        stop_loss={"stop_price": str(price - 5)},
    )
    sent = requests.post(f"{wp_site.rest}/orders/submit", json=bracket, headers=trader, timeout=10)
    assert sent.status_code == 200, sent.text
    assert sorted(leg["leg_role"] for leg in sent.json()["legs"]) == ["stop_loss", "take_profit"]
    wrong_side = dict(bracket, client_order_id="wp-http-bad", take_profit={"limit_price": "1"})
    refused = requests.post(
        f"{wp_site.rest}/orders/submit", json=wrong_side, headers=trader, timeout=10
    )
    assert refused.status_code == 400, refused.text
    assert not Order.objects.filter(client_order_id="wp-http-bad").exists()


def test_backend_wordpress_provider_collects_from_this_site(wp_site, backend):
    from marketdata.models import Bar
    from marketdata.providers.wordpress import WordPressProvider

    # The real cron path: make the job due, then let WordPress's wp-cron.php run it.
    wp_site.php(
        """
        wp_clear_scheduled_hook('trp_collect_stock_data');
        wp_schedule_event(time() - 1, 'trp_five_minutes', 'trp_collect_stock_data');
        """
    )
    assert requests.get(f"{wp_site.base}/wp-cron.php", timeout=30).status_code == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        count = int(
            wp_site.php(
                "global $wpdb; echo $wpdb->get_var('SELECT COUNT(*) FROM wp_trp_stock_data');"
            )
        )
        if count >= 4:
            break
        time.sleep(0.2)
    assert count >= 4
    # More history, stored the way the job stores each bar.
    wp_site.php(
        """
        $c = new Trading_Robot_Plug_API_Client();
        $q = array('symbol' => 'SPY', 'limit' => 24);
        $a = $c->get('/api/v1/market-data', $q, array('cache' => false));
        foreach ($a['data'] as $bar) { TRP_Stock_Data::store_bar('SPY', $bar); }
        """
    )

    login, password = _app_password(wp_site, "provider_reader", ["trp_view"])
    token = base64.b64encode(f"{login}:{password}".encode()).decode()
    provider = WordPressProvider(
        base_url=wp_site.rest,
        timezone="America/New_York",
        auth_header=f"Authorization: Basic {token}",
    )
    spy_bars = list(Bar.objects.filter(symbol="SPY", timeframe="5Min").order_by("-timestamp")[:24])
    latest = provider.latest(["SPY", "QQQ"])
    assert set(latest) == {"SPY", "QQQ"}
    assert latest["SPY"].price == spy_bars[0].close
    assert latest["SPY"].timestamp == spy_bars[0].timestamp + timedelta(minutes=5)

    now = datetime.now(UTC)
    built = provider.fetch_bars("SPY", "5Min", now - timedelta(days=3), now)
    assert len(built) >= 10
    closes = {b.timestamp + timedelta(minutes=5): b.close for b in spy_bars}
    # Each price row is a backend bar's close stamped at its end: the provider's bar there.
    for bar in built:
        assert bar.close == closes[bar.timestamp]

    # Without credentials the site refuses, and the provider says so.
    from marketdata.providers.base import ProviderError

    with pytest.raises(ProviderError, match="401"):
        WordPressProvider(base_url=wp_site.rest, auth_header="").latest(["SPY"])


@pytest.fixture
def short_ws_tokens(monkeypatch):
    """Backend processes started after this issue 30-second WebSocket tokens."""
    monkeypatch.setenv("WEBSOCKET_TOKEN_MAX_AGE", "30")


def test_dashboard_in_chromium(short_ws_tokens, wp_site, backend, daphne_factory):
    page_url = wp_site.php(
        """
        $id = wp_insert_post(array('post_type' => 'page', 'post_status' => 'publish',
            'post_title' => 'Trading', 'post_name' => 'trading',
            'post_content' => '<!-- wp:shortcode -->[tradingrobotplug_dashboard]'
                . '<!-- /wp:shortcode -->'));
        echo get_permalink($id);
        """
    ).strip()
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1300, "height": 1400})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("dialog", lambda dialog: dialog.accept())
        token_calls: list[str] = []
        chart_calls: list[str] = []

        def on_request(request) -> None:
            if "websocket/token" in request.url:
                token_calls.append(request.url)
            if "chart-data" in request.url:
                chart_calls.append(request.url)

        page.on("request", on_request)

        page.goto(f"{wp_site.base}/wp-login.php")
        page.fill("#user_login", "admin")
        page.fill("#user_pass", wp_site.admin_password)
        page.click("#wp-submit")
        page.wait_for_url("**/wp-admin/**", timeout=15_000)

        # Cookie-authenticated REST without the nonce counts as a visitor.
        assert page.request.get(f"{wp_site.rest}/positions").status == 401

        # Settings → TradingRobotPlug: "Test connection" reports on the real backend; the
        # key is not on the page; the button's handler refuses a request without its nonce.
        page.goto(f"{wp_site.base}/wp-admin/options-general.php?page=tradingrobotplug")
        assert backend.trade_key not in page.content()
        assert page.input_value("#trp_backend_url") == backend.base
        # Saving the form (options.php, its nonce) sanitizes the symbols and keeps the key,
        # whose field is always empty.
        assert page.input_value("#trp_api_key") == ""
        page.fill("#trp_symbols", "spy, qqq nvda,qqq")
        page.click("#submit")
        page.wait_for_selector("#setting-error-settings_updated", timeout=10_000)
        assert page.input_value("#trp_symbols") == "SPY,QQQ,NVDA"
        page.click("#trp-test-connection")
        page.wait_for_selector("#trp-test-result", timeout=10_000)
        assert "API key accepted" in page.locator("#trp-test-result").inner_text()
        forged = page.request.post(
            f"{wp_site.base}/wp-admin/admin-post.php", form={"action": "trp_test_connection"}
        )
        assert forged.status == 403

        page.goto(page_url)
        page.wait_for_selector("#trp-connection[data-state=live]", timeout=15_000)
        page.wait_for_function(
            "() => /^[1-9][0-9]* bars$/.test("
            "document.querySelector('[data-bars-for=SPY]').textContent)",
            timeout=10_000,
        )
        assert page.locator(".trp-chart[data-symbol=SPY] canvas").count() > 0
        assert page.locator("[data-price-for=SPY]").inner_text() != "–"
        html = page.content()
        assert backend.trade_key not in html
        assert "cdn" not in " ".join(
            page.eval_on_selector_all("script[src]", "els => els.map(e => e.src)")
        )

        # An order from the form: its trade row arrives within 2 s through the WebSocket.
        assert page.locator("#trp-trades tr.trp-trade-row").count() == 0
        page.select_option("#trp-order-form select[name=symbol]", "QQQ")
        page.fill("#trp-order-form input[name=qty]", "3")
        page.click("#trp-submit-order")
        page.wait_for_selector("#trp-trades tr.trp-trade-row", timeout=2_000)
        assert "QQQ" in page.locator("#trp-trades tr.trp-trade-row").first.inner_text()
        page.wait_for_selector("#trp-positions tr[data-key=QQQ]", timeout=2_000)
        page.wait_for_function(
            "() => document.querySelector('#trp-trade-count').textContent === '1'",
            timeout=5_000,
        )
        assert page.locator("#trp-cash").inner_text() != "100000.00"

        # A resting limit order shows under open orders with a cancel button that works.
        page.select_option("#trp-order-form select[name=type]", "limit")
        page.fill("#trp-order-form input[name=limit_price]", "1.00")
        page.click("#trp-submit-order")
        page.wait_for_selector("#trp-orders tbody tr button.trp-cancel", timeout=3_000)
        assert "limit" in page.locator("#trp-orders tbody tr").first.inner_text()
        page.click("#trp-orders tbody tr button.trp-cancel")
        page.wait_for_selector("#trp-orders tbody tr", state="detached", timeout=3_000)
        page.select_option("#trp-order-form select[name=type]", "market")

        # Lost messages: the stream's sequence jumps. The page notices the gap at the next
        # event and re-fetches everything over REST (its charts included).
        charts_before = len(chart_calls)
        off_loop(_skip_event_seq, 5)
        off_loop(_fill_in_worker, "SPY")
        page.wait_for_function(
            "() => document.querySelectorAll('#trp-trades tr.trp-trade-row').length === 2",
            timeout=3_000,
        )
        deadline = time.monotonic() + 5
        while len(chart_calls) == charts_before and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        assert len(chart_calls) > charts_before
        assert off_loop(_only_order) == (OrderSource.WORDPRESS, Decimal("3"))

        # The kill switch, confirmed: the halted banner shows and the backend is halted.
        page.click("#trp-stop-trading")
        page.wait_for_selector("#trp-halted-banner:not([hidden])", timeout=3_000)
        assert "kill switch" in page.locator("#trp-halted-banner").inner_text()
        assert off_loop(_halted)
        assert off_loop(_limit_order_status) == "canceled"
        page.mouse.move(0, 0)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(ARTIFACTS / "wordpress-dashboard.png"), full_page=True)

        page.click("#trp-resume-trading")
        page.wait_for_selector("#trp-halted-banner[hidden]", state="attached", timeout=3_000)
        assert not off_loop(_halted)

        # The backend goes away: the page says so and keeps retrying (no attempt limit).
        # A fill happens meanwhile that no stream can deliver; once the backend is back the
        # page reconnects by itself and re-fetches, so the missed trade shows up.
        port = backend.daphne.port
        backend.daphne.stop()
        page.wait_for_selector("#trp-connection[data-state=reconnecting]", timeout=5_000)
        off_loop(_fill_in_worker, "NVDA")
        daphne_factory(port=port)
        page.wait_for_selector("#trp-connection[data-state=live]", timeout=20_000)
        page.wait_for_function(
            "() => document.querySelectorAll('#trp-trades tr.trp-trade-row').length === 3",
            timeout=5_000,
        )
        assert "NVDA" in page.locator("#trp-trades tr.trp-trade-row").first.inner_text()
        page.wait_for_selector("#trp-positions tr[data-key=NVDA]", timeout=2_000)
        # Tokens live 30 s here: the page renewed its token through WordPress before expiry
        # (the reconnect above used a renewed one).
        deadline = time.monotonic() + 8
        while len(token_calls) < 2 and time.monotonic() < deadline:
            page.wait_for_timeout(200)
        assert len(token_calls) >= 2
        assert all(url.startswith(wp_site.rest) for url in token_calls)
        assert errors == []


def test_uninstall_removes_table_options_capabilities_and_cron(wp_site):
    state = wp_site.php_json(
        """
        require_once ABSPATH . 'wp-admin/includes/plugin.php';
        deactivate_plugins('tradingrobotplug/tradingrobotplug.php');
        uninstall_plugin('tradingrobotplug/tradingrobotplug.php');
        global $wpdb;
        wp_cache_flush();
        $options = $wpdb->get_col("SELECT option_name FROM $wpdb->options"
            . " WHERE option_name LIKE 'trp\\_%' OR option_name LIKE '\\_transient%trp\\_%'");
        $roles = array();
        foreach (wp_roles()->role_objects as $name => $role) {
            if ($role->has_cap('trp_view') || $role->has_cap('trp_trade')) { $roles[] = $name; }
        }
        echo wp_json_encode(array(
            'table' => $wpdb->get_var("SHOW TABLES LIKE '{$wpdb->prefix}trp_stock_data'"),
            'options' => $options,
            'roles' => $roles,
            'cron' => wp_next_scheduled('trp_collect_stock_data'),
            'active' => is_plugin_active('tradingrobotplug/tradingrobotplug.php'),
        ));
        """
    )
    assert state["table"] is None
    # The test harness's own connect-to option is not the plugin's.
    assert [o for o in state["options"] if o != "trp_test_connect_to"] == []
    assert state["roles"] == []
    assert state["cron"] is False
    assert state["active"] is False


def test_the_plugin_logged_no_php_warnings(wp_site):
    """Everything above ran with WP_DEBUG on: no notice, warning or deprecation came from the
    plugin's own files (WordPress 6.1's own PHP 8.2 deprecations are not ours)."""
    log = wp_site.log_dir / "wordpress-debug.log"
    lines = log.read_text().splitlines() if log.exists() else []
    ours = [line for line in lines if "/plugins/tradingrobotplug/" in line]
    assert ours == []
