<?php
/**
 * Settings → TradingRobotPlug: the backend URL, API key, symbols, cache and retention, and a
 * "Test connection" button. Only users with manage_options see or change any of it.
 *
 * @package TradingRobotPlug
 */

defined( 'ABSPATH' ) || exit;

/**
 * The settings page.
 */
class TRP_Admin {

	const PAGE   = 'tradingrobotplug';
	const ACTION = 'trp_test_connection';

	/**
	 * Hooks.
	 */
	public static function register() {
		// On init, not admin_init: the sanitizers then guard every update_option(), not only the form.
		add_action( 'init', array( 'TRP_Settings', 'register_settings' ) );
		add_action( 'admin_menu', array( __CLASS__, 'menu' ) );
		add_action( 'admin_post_' . self::ACTION, array( __CLASS__, 'handle_test_connection' ) );
	}

	/**
	 * Adds the page under Settings.
	 */
	public static function menu() {
		add_options_page(
			__( 'TradingRobotPlug', 'tradingrobotplug' ),
			__( 'TradingRobotPlug', 'tradingrobotplug' ),
			'manage_options',
			self::PAGE,
			array( __CLASS__, 'render' )
		);
	}

	/**
	 * Calls the backend's health (public) and status (needs the key) and says what is wrong.
	 *
	 * @return array{ok:bool, messages:string[]}
	 */
	public static function test_connection() {
		$client   = new Trading_Robot_Plug_API_Client();
		$messages = array();
		$health   = $client->get( '/api/v1/health', array(), array( 'cache' => false ) );
		if ( is_wp_error( $health ) ) {
			$code = $health->get_error_code();
			if ( 'trp_backend_unreachable' === $code ) {
				$messages[] = sprintf( 'Unreachable: nothing answered at %s (%s). Check the backend URL and that the backend is running.', $client->base_url(), $health->get_error_message() );
			} elseif ( 'trp_backend_tls' === $code ) {
				$messages[] = sprintf( 'TLS problem: %s. The backend\'s certificate is not trusted by this server, or the URL should use http://.', $health->get_error_message() );
			} else {
				$messages[] = 'Health check failed: ' . $health->get_error_message();
			}
			return array(
				'ok'       => false,
				'messages' => $messages,
			);
		}
		$messages[] = sprintf( 'Reachable: the backend at %s answers (status: %s).', $client->base_url(), (string) ( $health['status'] ?? 'unknown' ) );
		if ( '' === TRP_Settings::api_key() ) {
			$messages[] = 'No API key is set: enter the key the backend issued (manage.py create_api_key NAME --scope trade).';
			return array(
				'ok'       => false,
				'messages' => $messages,
			);
		}
		$status = $client->get( '/api/v1/status', array(), array( 'cache' => false ) );
		if ( is_wp_error( $status ) ) {
			$code = $status->get_error_code();
			if ( 'trp_backend_auth' === $code ) {
				$messages[] = '401 bad key: the backend does not accept this API key (mistyped, revoked or expired).';
			} elseif ( 'trp_backend_scope' === $code ) {
				$messages[] = '403 wrong scope: the key is valid but may not read the robot\'s status.';
			} else {
				$messages[] = 'Status check failed: ' . $status->get_error_message();
			}
			return array(
				'ok'       => false,
				'messages' => $messages,
			);
		}
		$messages[] = sprintf( 'API key accepted: trading is %s.', ! empty( $status['halted'] ) ? 'halted' : 'active' );
		// The key's scope, without side effects: the backend checks the scope before the body,
		// so an empty order is a 400 for a trade key and a 403 for a read-only one.
		$probe = $client->request( '/api/v1/orders/submit', 'POST', array() );
		$code  = is_wp_error( $probe ) ? $probe->get_error_code() : '';
		if ( 'trp_backend_scope' === $code ) {
			$messages[] = '403 wrong scope: this key is read-only. The dashboard works, but orders and the kill switch from WordPress will fail; use a key with the "trade" scope to allow them.';
			return array(
				'ok'       => false,
				'messages' => $messages,
			);
		}
		if ( is_wp_error( $probe ) && 400 === (int) ( $probe->get_error_data()['backend_status'] ?? 0 ) ) {
			$messages[] = 'Scope: trade (users with trp_trade can place orders and use the kill switch).';
		}
		return array(
			'ok'       => true,
			'messages' => $messages,
		);
	}

	/**
	 * admin-post handler of the "Test connection" button.
	 */
	public static function handle_test_connection() {
		if ( ! current_user_can( 'manage_options' ) ) {
			wp_die( esc_html__( 'Sorry, you are not allowed to do that.', 'tradingrobotplug' ), 403 );
		}
		check_admin_referer( self::ACTION );
		set_transient( 'trp_test_result_' . get_current_user_id(), self::test_connection(), 300 );
		wp_safe_redirect( admin_url( 'options-general.php?page=' . self::PAGE . '&trp_tested=1' ) );
		exit;
	}

	/**
	 * The page.
	 */
	public static function render() {
		if ( ! current_user_can( 'manage_options' ) ) {
			return;
		}
		$result = null;
		// phpcs:ignore WordPress.Security.NonceVerification.Recommended -- display flag only.
		if ( isset( $_GET['trp_tested'] ) ) {
			$result = get_transient( 'trp_test_result_' . get_current_user_id() );
			delete_transient( 'trp_test_result_' . get_current_user_id() );
		}
		$hint = TRP_Settings::api_key_hint();
		?>
		<div class="wrap">
			<h1><?php esc_html_e( 'TradingRobotPlug', 'tradingrobotplug' ); ?></h1>
			<?php if ( is_array( $result ) ) : ?>
				<div id="trp-test-result" class="notice <?php echo $result['ok'] ? 'notice-success' : 'notice-error'; ?>">
					<?php foreach ( $result['messages'] as $message ) : ?>
						<p><?php echo esc_html( $message ); ?></p>
					<?php endforeach; ?>
				</div>
			<?php endif; ?>
			<form method="post" action="options.php">
				<?php settings_fields( TRP_Settings::GROUP ); ?>
				<table class="form-table" role="presentation">
					<tr>
						<th scope="row"><label for="trp_backend_url"><?php esc_html_e( 'Backend URL', 'tradingrobotplug' ); ?></label></th>
						<td><input name="<?php echo esc_attr( TRP_Settings::BACKEND_URL ); ?>" id="trp_backend_url" type="url" class="regular-text" value="<?php echo esc_attr( TRP_Settings::backend_url() ); ?>" required>
						<p class="description"><?php esc_html_e( 'Where the trading backend runs, e.g. https://robot.example.com. Browsers connect to its WebSocket (/ws/updates) with short-lived tokens.', 'tradingrobotplug' ); ?></p></td>
					</tr>
					<tr>
						<th scope="row"><label for="trp_api_key"><?php esc_html_e( 'API key', 'tradingrobotplug' ); ?></label></th>
						<td><input name="<?php echo esc_attr( TRP_Settings::API_KEY ); ?>" id="trp_api_key" type="password" class="regular-text" value="" autocomplete="new-password" placeholder="<?php echo esc_attr( $hint ? $hint : __( 'not set', 'tradingrobotplug' ) ); ?>">
						<p class="description"><?php esc_html_e( 'Stored on this server only and never shown again; leave empty to keep the current key. A "trade" scope key lets users with trp_trade place orders.', 'tradingrobotplug' ); ?></p></td>
					</tr>
					<tr>
						<th scope="row"><label for="trp_symbols"><?php esc_html_e( 'Symbols', 'tradingrobotplug' ); ?></label></th>
						<td><input name="<?php echo esc_attr( TRP_Settings::SYMBOLS ); ?>" id="trp_symbols" type="text" class="regular-text" value="<?php echo esc_attr( implode( ',', TRP_Settings::symbols() ) ); ?>"></td>
					</tr>
					<tr>
						<th scope="row"><label for="trp_cache_seconds"><?php esc_html_e( 'Cache seconds', 'tradingrobotplug' ); ?></label></th>
						<td><input name="<?php echo esc_attr( TRP_Settings::CACHE_SECONDS ); ?>" id="trp_cache_seconds" type="number" min="0" max="3600" value="<?php echo esc_attr( (string) TRP_Settings::cache_seconds() ); ?>"></td>
					</tr>
					<tr>
						<th scope="row"><label for="trp_retention_days"><?php esc_html_e( 'Keep stock data (days)', 'tradingrobotplug' ); ?></label></th>
						<td><input name="<?php echo esc_attr( TRP_Settings::RETENTION ); ?>" id="trp_retention_days" type="number" min="1" max="3650" value="<?php echo esc_attr( (string) TRP_Settings::retention_days() ); ?>"></td>
					</tr>
				</table>
				<?php submit_button(); ?>
			</form>
			<form method="post" action="<?php echo esc_url( admin_url( 'admin-post.php' ) ); ?>">
				<input type="hidden" name="action" value="<?php echo esc_attr( self::ACTION ); ?>">
				<?php wp_nonce_field( self::ACTION ); ?>
				<?php submit_button( __( 'Test connection', 'tradingrobotplug' ), 'secondary', 'trp-test-connection', false ); ?>
			</form>
		</div>
		<?php
	}
}
