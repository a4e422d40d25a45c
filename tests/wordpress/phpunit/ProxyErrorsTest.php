<?php
/**
 * Backend failures become one clear error per cause, with a 4xx/5xx WordPress can act on.
 */
class ProxyErrorsTest extends TRP_TestCase {

	private static function closed_port_url() {
		$socket = stream_socket_server( 'tcp://127.0.0.1:0' );
		$name   = stream_socket_get_name( $socket, false );
		fclose( $socket );
		return 'http://' . $name;
	}

	public function test_unreachable_backend_is_503_with_a_clear_message() {
		self::configure( self::closed_port_url(), getenv( 'TRP_TRADE_KEY' ) );
		list( $status, $data ) = self::call( 'GET', 'positions' );
		$this->assertSame( 503, $status );
		$this->assertSame( 'trp_backend_unreachable', $data['code'] );
		$this->assertStringContainsString( 'could not be reached', $data['message'] );
	}

	public function test_tls_failure_is_named() {
		// A server whose certificate this site does not trust.
		self::configure( getenv( 'TRP_UNTRUSTED_TLS_URL' ), getenv( 'TRP_TRADE_KEY' ) );
		list( $status, $data ) = self::call( 'GET', 'positions' );
		$this->assertSame( 502, $status );
		$this->assertSame( 'trp_backend_tls', $data['code'] );
		$this->assertStringContainsString( 'TLS', $data['message'] );
	}

	public function test_bad_key_is_502_naming_the_key() {
		self::configure( getenv( 'TRP_BACKEND_URL' ), 'not-a-valid-key-123' );
		list( $status, $data ) = self::call( 'GET', 'positions' );
		$this->assertSame( 502, $status );
		$this->assertSame( 'trp_backend_auth', $data['code'] );
		$this->assertStringContainsString( 'API key', $data['message'] );
		$this->assertSame( 401, $data['data']['backend_status'] );
	}

	public function test_read_key_cannot_trade_and_says_scope() {
		self::configure( getenv( 'TRP_BACKEND_URL' ), getenv( 'TRP_READ_KEY' ) );
		$before = self::backend_order_count();
		list( $status, $data ) = self::call( 'POST', 'orders/submit', array( 'symbol' => 'SPY', 'side' => 'buy', 'qty' => '1' ) );
		$this->assertSame( 502, $status );
		$this->assertSame( 'trp_backend_scope', $data['code'] );
		$this->assertStringContainsString( 'trade', $data['message'] );
		$this->assertSame( $before, self::backend_order_count() );
	}

	public function test_backend_404_and_400_pass_through_with_its_message() {
		list( $status, $data ) = self::call( 'GET', 'strategies/999999' );
		$this->assertSame( 404, $status );
		$this->assertStringContainsString( '999999', $data['message'] );
		$this->assertSame( 'not_found', $data['data']['backend_error']['code'] );

		list( $status, $data ) = self::call( 'POST', 'orders/submit', array( 'symbol' => 'ZZZZ', 'side' => 'buy', 'qty' => '1' ) );
		$this->assertSame( 404, $status );
		$this->assertSame( 'unknown_symbol', $data['data']['backend_error']['code'] );

		// A limit order without its price: valid for WordPress's schema, refused by the backend.
		list( $status, $data ) = self::call( 'POST', 'orders/submit', array( 'symbol' => 'SPY', 'side' => 'buy', 'qty' => '1', 'type' => 'limit' ) );
		$this->assertSame( 400, $status );
		$this->assertSame( 'invalid_request', $data['data']['backend_error']['code'] );
	}

	public function test_stock_data_is_served_from_the_table_marked_stale_when_backend_is_down() {
		TRP_Stock_Data::collect();
		list( $status, $fresh ) = self::call( 'GET', 'stock-data' );
		$this->assertSame( 200, $status );
		$this->assertFalse( $fresh['stale'] );
		$this->assertNotEmpty( $fresh['stock_data'] );

		self::configure( self::closed_port_url(), getenv( 'TRP_TRADE_KEY' ) );
		$result = TRP_Stock_Data::collect();
		$this->assertNotEmpty( $result['errors'] );
		list( $status, $stale ) = self::call( 'GET', 'stock-data' );
		$this->assertSame( 200, $status );
		$this->assertTrue( $stale['stale'] );
		$this->assertSame( array_column( $fresh['stock_data'], 'price', 'symbol' ), array_column( $stale['stock_data'], 'price', 'symbol' ) );
		$this->assertStringContainsString( 'could not be reached', $stale['last_collection']['errors'][0] );
		list( $status, ) = self::call( 'GET', 'positions' );
		$this->assertSame( 503, $status );

		self::configure( getenv( 'TRP_BACKEND_URL' ), getenv( 'TRP_TRADE_KEY' ) );
		TRP_Stock_Data::collect();
	}
}
