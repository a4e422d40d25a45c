<?php
/**
 * The [tradingrobotplug_dashboard] shortcode: live candles, prices, positions, open orders,
 * trades and performance; an order form, cancel buttons and the kill switch for trp_trade.
 *
 * The browser talks to this site's REST routes only (cookie + REST nonce) and to the backend's
 * WebSocket with a short-lived token from websocket/token; the API key never reaches it.
 *
 * @package TradingRobotPlug
 */

defined( 'ABSPATH' ) || exit;

/**
 * The dashboard.
 */
class TRP_Dashboard {

	const VENDOR = 'assets/vendor/lightweight-charts.standalone.production.js';

	/**
	 * Hooks.
	 */
	public static function register() {
		add_shortcode( 'tradingrobotplug_dashboard', array( __CLASS__, 'render' ) );
		add_action( 'init', array( __CLASS__, 'register_block' ) );
	}

	/**
	 * The same dashboard as a block ("TradingRobotPlug dashboard" in the inserter), rendered on
	 * the server like the shortcode.
	 */
	public static function register_block() {
		wp_register_script(
			'trp-dashboard-block',
			TRP_PLUGIN_URL . 'assets/js/block.js',
			array( 'wp-blocks', 'wp-element', 'wp-i18n' ),
			TRP_VERSION,
			true
		);
		register_block_type(
			'tradingrobotplug/dashboard',
			array(
				'api_version'     => 2,
				'title'           => __( 'TradingRobotPlug dashboard', 'tradingrobotplug' ),
				'category'        => 'widgets',
				'editor_script'   => 'trp-dashboard-block',
				'render_callback' => array( __CLASS__, 'render' ),
				'supports'        => array( 'html' => false ),
			)
		);
	}

	/**
	 * Enqueues the scripts with the page's configuration.
	 */
	private static function enqueue() {
		$deps = array();
		if ( file_exists( TRP_PLUGIN_DIR . self::VENDOR ) ) {
			wp_enqueue_script( 'trp-lightweight-charts', TRP_PLUGIN_URL . self::VENDOR, array(), TRP_VERSION, true );
			$deps[] = 'trp-lightweight-charts';
		}
		wp_enqueue_style( 'trp-dashboard', TRP_PLUGIN_URL . 'assets/css/dashboard.css', array(), TRP_VERSION );
		wp_enqueue_script( 'trp-dashboard', TRP_PLUGIN_URL . 'assets/js/dashboard.js', $deps, TRP_VERSION, true );
		wp_localize_script(
			'trp-dashboard',
			'TradingRobotPlugConfig',
			array(
				'restUrl'  => esc_url_raw( rest_url( TRP_REST_Controller::NAMESPACE_V1 . '/' ) ),
				'nonce'    => wp_create_nonce( 'wp_rest' ),
				'symbols'  => TRP_Settings::symbols(),
				'canTrade' => current_user_can( TRP_Capabilities::TRADE ),
			)
		);
	}

	/**
	 * The shortcode's HTML.
	 *
	 * @return string
	 */
	public static function render() {
		if ( ! current_user_can( TRP_Capabilities::VIEW ) ) {
			return '<p class="trp-denied">' . esc_html__( 'Log in with an account that may view the trading dashboard.', 'tradingrobotplug' ) . '</p>';
		}
		self::enqueue();
		$can_trade = current_user_can( TRP_Capabilities::TRADE );
		ob_start();
		?>
		<div id="trp-dashboard" class="trp-dashboard">
			<div class="trp-bar">
				<span id="trp-connection" class="trp-pill" data-state="connecting"><?php esc_html_e( 'connecting…', 'tradingrobotplug' ); ?></span>
				<span><?php esc_html_e( 'Equity', 'tradingrobotplug' ); ?> <strong id="trp-equity">–</strong></span>
				<span><?php esc_html_e( 'Cash', 'tradingrobotplug' ); ?> <strong id="trp-cash">–</strong></span>
				<span><?php esc_html_e( 'Realized P&L', 'tradingrobotplug' ); ?> <strong id="trp-realized">–</strong></span>
				<span><?php esc_html_e( 'Unrealized P&L', 'tradingrobotplug' ); ?> <strong id="trp-unrealized">–</strong></span>
				<span><?php esc_html_e( 'Trades', 'tradingrobotplug' ); ?> <strong id="trp-trade-count">–</strong></span>
			</div>
			<div id="trp-halted-banner" class="trp-banner trp-halted" hidden><?php esc_html_e( 'Trading is halted', 'tradingrobotplug' ); ?>: <span id="trp-halted-reason"></span></div>
			<div id="trp-error-banner" class="trp-banner" hidden></div>
			<div class="trp-charts">
				<?php foreach ( TRP_Settings::symbols() as $symbol ) : ?>
					<div class="trp-chart-box">
						<div class="trp-chart-head"><strong><?php echo esc_html( $symbol ); ?></strong> <span data-price-for="<?php echo esc_attr( $symbol ); ?>">–</span> <small data-bars-for="<?php echo esc_attr( $symbol ); ?>"></small></div>
						<div class="trp-chart" data-symbol="<?php echo esc_attr( $symbol ); ?>"></div>
					</div>
				<?php endforeach; ?>
			</div>
			<?php if ( $can_trade ) : ?>
				<form id="trp-order-form" class="trp-order-form">
					<select name="symbol" aria-label="<?php esc_attr_e( 'Symbol', 'tradingrobotplug' ); ?>">
						<?php foreach ( TRP_Settings::symbols() as $symbol ) : ?>
							<option value="<?php echo esc_attr( $symbol ); ?>"><?php echo esc_html( $symbol ); ?></option>
						<?php endforeach; ?>
					</select>
					<select name="side" aria-label="<?php esc_attr_e( 'Side', 'tradingrobotplug' ); ?>"><option value="buy"><?php esc_html_e( 'Buy', 'tradingrobotplug' ); ?></option><option value="sell"><?php esc_html_e( 'Sell', 'tradingrobotplug' ); ?></option></select>
					<input name="qty" type="number" min="1" step="1" value="1" aria-label="<?php esc_attr_e( 'Quantity', 'tradingrobotplug' ); ?>">
					<select name="type" aria-label="<?php esc_attr_e( 'Type', 'tradingrobotplug' ); ?>"><option value="market"><?php esc_html_e( 'Market', 'tradingrobotplug' ); ?></option><option value="limit"><?php esc_html_e( 'Limit', 'tradingrobotplug' ); ?></option></select>
					<input name="limit_price" type="number" min="0" step="0.01" placeholder="<?php esc_attr_e( 'Limit price', 'tradingrobotplug' ); ?>">
					<button type="submit" id="trp-submit-order"><?php esc_html_e( 'Place order', 'tradingrobotplug' ); ?></button>
					<button type="button" id="trp-stop-trading" class="trp-danger"><?php esc_html_e( 'Stop trading', 'tradingrobotplug' ); ?></button>
					<button type="button" id="trp-resume-trading" hidden><?php esc_html_e( 'Resume trading', 'tradingrobotplug' ); ?></button>
					<span id="trp-action-message" role="status"></span>
				</form>
			<?php endif; ?>
			<h3><?php esc_html_e( 'Positions', 'tradingrobotplug' ); ?></h3>
			<table id="trp-positions" class="trp-table"><thead><tr><th><?php esc_html_e( 'Symbol', 'tradingrobotplug' ); ?></th><th><?php esc_html_e( 'Qty', 'tradingrobotplug' ); ?></th><th><?php esc_html_e( 'Avg price', 'tradingrobotplug' ); ?></th><th><?php esc_html_e( 'Last', 'tradingrobotplug' ); ?></th><th><?php esc_html_e( 'Unrealized', 'tradingrobotplug' ); ?></th></tr></thead><tbody></tbody></table>
			<h3><?php esc_html_e( 'Open orders', 'tradingrobotplug' ); ?></h3>
			<table id="trp-orders" class="trp-table"><thead><tr><th><?php esc_html_e( 'Time', 'tradingrobotplug' ); ?></th><th><?php esc_html_e( 'Symbol', 'tradingrobotplug' ); ?></th><th><?php esc_html_e( 'Side', 'tradingrobotplug' ); ?></th><th><?php esc_html_e( 'Type', 'tradingrobotplug' ); ?></th><th><?php esc_html_e( 'Qty', 'tradingrobotplug' ); ?></th><th><?php esc_html_e( 'Status', 'tradingrobotplug' ); ?></th><th></th></tr></thead><tbody></tbody></table>
			<h3><?php esc_html_e( 'Trades', 'tradingrobotplug' ); ?></h3>
			<table id="trp-trades" class="trp-table"><thead><tr><th><?php esc_html_e( 'Time', 'tradingrobotplug' ); ?></th><th><?php esc_html_e( 'Symbol', 'tradingrobotplug' ); ?></th><th><?php esc_html_e( 'Side', 'tradingrobotplug' ); ?></th><th><?php esc_html_e( 'Qty', 'tradingrobotplug' ); ?></th><th><?php esc_html_e( 'Price', 'tradingrobotplug' ); ?></th><th><?php esc_html_e( 'P&L', 'tradingrobotplug' ); ?></th></tr></thead><tbody></tbody></table>
		</div>
		<?php
		return (string) ob_get_clean();
	}
}
