<?php
/**
 * Option sanitization, the key kept server-side, the settings page and "Test connection".
 */
class SettingsTest extends TRP_TestCase {

	public function test_backend_url_is_sanitized_and_bad_urls_keep_the_previous_one() {
		update_option( TRP_Settings::BACKEND_URL, 'http://robot.example.com:8000' );
		$this->assertSame( 'https://robot.example.com', TRP_Settings::sanitize_backend_url( ' https://robot.example.com/ ' ) );
		foreach ( array( 'javascript:alert(1)', 'ftp://robot.example.com', 'robot.example.com', 'http://user:pw@robot.example.com', 'http://robot.example.com/?x=1', '' ) as $bad ) {
			$this->assertSame( 'http://robot.example.com:8000', TRP_Settings::sanitize_backend_url( $bad ), $bad );
		}
	}

	public function test_api_key_empty_keeps_the_stored_key_and_bad_keys_are_refused() {
		update_option( TRP_Settings::API_KEY, 'stored-key-12345678' );
		$this->assertSame( 'stored-key-12345678', TRP_Settings::sanitize_api_key( '' ) );
		$this->assertSame( 'stored-key-12345678', TRP_Settings::sanitize_api_key( 'has space inside' ) );
		$this->assertSame( 'stored-key-12345678', TRP_Settings::sanitize_api_key( 'short' ) );
		$this->assertSame( 'new-key-abcdefgh', TRP_Settings::sanitize_api_key( ' new-key-abcdefgh ' ) );
	}

	public function test_symbols_cache_and_retention() {
		$this->assertSame( 'SPY,QQQ,BRK.B', TRP_Settings::sanitize_symbols( 'spy, qqq qqq,brk.b' ) );
		update_option( TRP_Settings::SYMBOLS, 'SPY,QQQ' );
		$this->assertSame( 'SPY,QQQ', TRP_Settings::sanitize_symbols( 'SPY,<b>' ) );
		$this->assertSame( 'SPY,QQQ', TRP_Settings::sanitize_symbols( '' ) );
		$this->assertSame( 60, TRP_Settings::sanitize_cache_seconds( '60' ) );
		update_option( TRP_Settings::CACHE_SECONDS, 30 );
		$this->assertSame( 30, TRP_Settings::sanitize_cache_seconds( '-1' ) );
		$this->assertSame( 30, TRP_Settings::sanitize_cache_seconds( '99999' ) );
		$this->assertSame( 30, TRP_Settings::sanitize_cache_seconds( '1.5' ) );
		$this->assertSame( 7, TRP_Settings::sanitize_retention( '7' ) );
		update_option( TRP_Settings::RETENTION, 30 );
		$this->assertSame( 30, TRP_Settings::sanitize_retention( '0' ) );
		update_option( TRP_Settings::SYMBOLS, TRP_Settings::DEFAULT_SYMBOLS );
	}

	public function test_sanitizers_run_through_update_option() {
		update_option( TRP_Settings::BACKEND_URL, 'http://robot.example.com' );
		update_option( TRP_Settings::BACKEND_URL, 'javascript:alert(1)' );
		$this->assertSame( 'http://robot.example.com', get_option( TRP_Settings::BACKEND_URL ) );
	}

	public function test_key_is_not_autoloaded_and_never_printed_in_full() {
		global $wpdb;
		$autoload = $wpdb->get_var( $wpdb->prepare( "SELECT autoload FROM {$wpdb->options} WHERE option_name = %s", TRP_Settings::API_KEY ) );
		$this->assertSame( 'no', $autoload );

		$key = getenv( 'TRP_TRADE_KEY' );
		wp_set_current_user( 1 );
		require_once ABSPATH . 'wp-admin/includes/template.php';
		require_once ABSPATH . 'wp-admin/includes/plugin.php';
		ob_start();
		TRP_Admin::render();
		$html = ob_get_clean();
		$this->assertStringContainsString( 'name="trp_api_key"', $html );
		$this->assertStringNotContainsString( $key, $html );
		$this->assertStringContainsString( substr( $key, -4 ), $html );
		$this->assertStringContainsString( esc_attr( getenv( 'TRP_BACKEND_URL' ) ), $html );

		// Nor on the dashboard page that browsers get.
		$page = do_shortcode( '[tradingrobotplug_dashboard]' );
		$this->assertStringNotContainsString( $key, $page );
		$this->assertStringNotContainsString( $key, wp_json_encode( wp_scripts()->get_data( 'trp-dashboard', 'data' ) ) );
	}

	public function test_settings_page_needs_manage_options() {
		wp_set_current_user( self::$users['trader'] );
		ob_start();
		TRP_Admin::render();
		$this->assertSame( '', ob_get_clean() );
		$this->assertFalse( current_user_can( 'manage_options' ) );
	}

	public function test_connection_test_says_what_is_wrong() {
		$ok = TRP_Admin::test_connection();
		$this->assertTrue( $ok['ok'], implode( ' ', $ok['messages'] ) );
		$this->assertStringContainsString( 'API key accepted', implode( ' ', $ok['messages'] ) );

		$this->assertStringContainsString( 'Scope: trade', implode( ' ', $ok['messages'] ) );

		$before = self::backend_order_count();
		self::configure( getenv( 'TRP_BACKEND_URL' ), getenv( 'TRP_READ_KEY' ) );
		$read = TRP_Admin::test_connection();
		$this->assertFalse( $read['ok'] );
		$this->assertStringContainsString( '403 wrong scope', implode( ' ', $read['messages'] ) );
		self::configure( getenv( 'TRP_BACKEND_URL' ), getenv( 'TRP_TRADE_KEY' ) );
		$this->assertSame( $before, self::backend_order_count(), 'the scope probe places no order' );

		self::configure( getenv( 'TRP_BACKEND_URL' ), 'wrong-key-abcdefgh' );
		$bad = TRP_Admin::test_connection();
		$this->assertFalse( $bad['ok'] );
		$this->assertStringContainsString( '401 bad key', implode( ' ', $bad['messages'] ) );

		self::configure( 'http://127.0.0.1:1', getenv( 'TRP_TRADE_KEY' ) );
		$down = TRP_Admin::test_connection();
		$this->assertFalse( $down['ok'] );
		$this->assertStringContainsString( 'Unreachable', implode( ' ', $down['messages'] ) );

		// A server whose certificate this site does not trust.
		self::configure( getenv( 'TRP_UNTRUSTED_TLS_URL' ), getenv( 'TRP_TRADE_KEY' ) );
		$tls = TRP_Admin::test_connection();
		$this->assertStringContainsString( 'TLS problem', implode( ' ', $tls['messages'] ) );
	}
}
