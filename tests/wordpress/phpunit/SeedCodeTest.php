<?php
/**
 * The project's original WordPress code works unchanged against the backend with the plugin's
 * options: the API client's seed methods (get_fastapi_endpoint, get_websocket_token) and the
 * legacy execute_trade() that hard-codes http://localhost:8000 (routed to the test backend by
 * the test site's connect-to mapping, as an /etc/hosts entry would).
 */
require_once dirname( __DIR__ ) . '/seed/execute-trade.php';

class SeedCodeTest extends TRP_TestCase {

	public function test_seed_client_methods() {
		update_option( 'trp_fastapi_url', getenv( 'TRP_BACKEND_URL' ) );
		try {
			$client = new Trading_Robot_Plug_API_Client();
			$token  = $client->get_websocket_token( 1 );
			$this->assertIsString( $token );
			$this->assertGreaterThan( 20, strlen( $token ) );

			$status = $client->get_fastapi_endpoint( '/api/v1/status' );
			$this->assertIsArray( $status );
			$this->assertArrayHasKey( 'halted', $status );

			$answer = $client->get_fastapi_endpoint( '/api/v1/websocket/token', 'POST', array( 'user_id' => 1 ) );
			$this->assertNotEmpty( $answer['token'] ?? null );

			$error = $client->get_fastapi_endpoint( '/api/v1/strategies/999999' );
			$this->assertInstanceOf( WP_Error::class, $error );
		} finally {
			delete_option( 'trp_fastapi_url' );
		}
	}

	public function test_legacy_execute_trade_is_authenticated_by_the_plugin() {
		$port = wp_parse_url( getenv( 'TRP_BACKEND_URL' ), PHP_URL_PORT );
		update_option( 'trp_test_connect_to', "localhost:8000:127.0.0.1:$port" );
		try {
			self::configure( 'http://localhost:8000', getenv( 'TRP_TRADE_KEY' ) );
			$result = execute_trade( 'SPY', 'buy', 2 );
			$this->assertSame( 'ok', $result['status'] ?? null, wp_json_encode( $result ) );
			$this->assertSame( 'wordpress', $result['order']['source'] );
			$this->assertSame( 'SPY', $result['order']['symbol'] );
			$this->assertSame( 'buy', $result['order']['side'] );

			// Without the plugin's key the same code is refused: it is the plugin that signs it.
			global $wpdb;
			$wpdb->update( $wpdb->options, array( 'option_value' => '' ), array( 'option_name' => TRP_Settings::API_KEY ) );
			wp_cache_delete( TRP_Settings::API_KEY, 'options' );
			$refused = execute_trade( 'SPY', 'buy', 2 );
			$this->assertSame( 'error', $refused['status'] );
			$this->assertSame( 'not_authenticated', $refused['error']['code'] );
		} finally {
			delete_option( 'trp_test_connect_to' );
		}
	}
}
