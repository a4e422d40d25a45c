<?php
/**
 * The shortcode and the block render the dashboard for trp_view users only, with the trading
 * controls for trp_trade users only, and escape what they print.
 */
class DashboardTest extends TRP_TestCase {

	public function test_shortcode_by_capability() {
		wp_set_current_user( 0 );
		$anonymous = do_shortcode( '[tradingrobotplug_dashboard]' );
		$this->assertStringNotContainsString( 'id="trp-dashboard"', $anonymous );
		$this->assertStringContainsString( 'trp-denied', $anonymous );

		wp_set_current_user( self::$users['viewer'] );
		$viewer = do_shortcode( '[tradingrobotplug_dashboard]' );
		$this->assertStringContainsString( 'id="trp-dashboard"', $viewer );
		$this->assertStringContainsString( 'data-symbol="SPY"', $viewer );
		$this->assertStringNotContainsString( 'trp-order-form', $viewer );
		$this->assertStringNotContainsString( 'trp-stop-trading', $viewer );

		wp_set_current_user( self::$users['trader'] );
		$trader = do_shortcode( '[tradingrobotplug_dashboard]' );
		$this->assertStringContainsString( 'id="trp-order-form"', $trader );
		$this->assertStringContainsString( 'id="trp-stop-trading"', $trader );
	}

	public function test_block_renders_the_same_dashboard() {
		wp_set_current_user( self::$users['viewer'] );
		$this->assertTrue( WP_Block_Type_Registry::get_instance()->is_registered( 'tradingrobotplug/dashboard' ) );
		$html = do_blocks( '<!-- wp:tradingrobotplug/dashboard /-->' );
		$this->assertStringContainsString( 'id="trp-dashboard"', $html );
	}

	public function test_bundled_chart_library_and_config() {
		wp_set_current_user( self::$users['trader'] );
		do_shortcode( '[tradingrobotplug_dashboard]' );
		$scripts = wp_scripts();
		$this->assertContains( 'trp-lightweight-charts', $scripts->queue );
		$src = $scripts->registered['trp-lightweight-charts']->src;
		$this->assertStringStartsWith( plugins_url( 'tradingrobotplug/assets/vendor/' ), $src );
		$this->assertFileExists( WP_PLUGIN_DIR . '/tradingrobotplug/assets/vendor/lightweight-charts.standalone.production.js' );
		$config = $scripts->get_data( 'trp-dashboard', 'data' );
		$this->assertStringContainsString( '"canTrade":"1"', $config );
		$this->assertStringContainsString( 'tradingrobotplug\/v1', $config );
	}

	public function test_symbols_are_escaped() {
		// Stored directly (bypassing the sanitizer), as a hostile database row would be.
		global $wpdb;
		$wpdb->update( $wpdb->options, array( 'option_value' => 'SPY,"><script>alert(1)</script>' ), array( 'option_name' => TRP_Settings::SYMBOLS ) );
		wp_cache_delete( TRP_Settings::SYMBOLS, 'options' );
		wp_cache_delete( 'alloptions', 'options' );
		try {
			wp_set_current_user( self::$users['trader'] );
			$html = do_shortcode( '[tradingrobotplug_dashboard]' );
			$this->assertStringNotContainsString( '<script>alert(1)', $html );
			$this->assertStringContainsString( '&lt;script&gt;', $html );
		} finally {
			update_option( TRP_Settings::SYMBOLS, TRP_Settings::DEFAULT_SYMBOLS );
		}
	}
}
