<?php
/**
 * The Bearer key is added to requests for exactly the configured backend, never elsewhere and
 * never over credentials a request already has.
 */
class OutboundAuthTest extends TRP_TestCase {

	private function filtered( $url, $headers = array(), $extra = array() ) {
		return apply_filters( 'http_request_args', array( 'headers' => $headers ) + $extra, $url );
	}

	public function test_only_the_configured_scheme_host_and_port() {
		self::configure( 'http://localhost:8000', 'outbound-key-12345678' );
		$this->assertSame( 'Bearer outbound-key-12345678', $this->filtered( 'http://localhost:8000/api/trade/SPY/buy' )['headers']['Authorization'] );
		$this->assertSame( 'wordpress', $this->filtered( 'http://LOCALHOST:8000/api/status' )['headers']['X-TRP-Source'] );
		foreach ( array(
			'http://localhost:8001/api/trade/SPY/buy',
			'https://localhost:8000/api/trade/SPY/buy',
			'http://localhost/api/trade/SPY/buy',
			'http://evil.example.com:8000/api/trade/SPY/buy',
			'http://localhost.evil.example.com:8000/',
			'http://127.0.0.1:8000/api/status',
		) as $url ) {
			$this->assertArrayNotHasKey( 'Authorization', $this->filtered( $url )['headers'], $url );
		}
	}

	public function test_default_ports_are_the_same_origin() {
		self::configure( 'https://robot.example.com', 'outbound-key-12345678' );
		$this->assertArrayHasKey( 'Authorization', $this->filtered( 'https://robot.example.com:443/api/status' )['headers'] );
		$this->assertArrayNotHasKey( 'Authorization', $this->filtered( 'http://robot.example.com/api/status' )['headers'] );
	}

	public function test_existing_credentials_are_left_alone() {
		self::configure( 'http://localhost:8000', 'outbound-key-12345678' );
		$own = $this->filtered( 'http://localhost:8000/api/status', array( 'authorization' => 'Bearer theirs' ) );
		$this->assertSame( array( 'authorization' => 'Bearer theirs' ), $own['headers'] );
		$cookie = $this->filtered( 'http://localhost:8000/api/status', array( 'Cookie' => 'sessionid=x' ) );
		$this->assertArrayNotHasKey( 'Authorization', $cookie['headers'] );
		$jar = $this->filtered( 'http://localhost:8000/api/status', array(), array( 'cookies' => array( 'sessionid' => 'x' ) ) );
		$this->assertArrayNotHasKey( 'Authorization', $jar['headers'] );
	}

	public function test_no_key_adds_nothing() {
		update_option( TRP_Settings::BACKEND_URL, 'http://localhost:8000' );
		global $wpdb;
		$wpdb->update( $wpdb->options, array( 'option_value' => '' ), array( 'option_name' => TRP_Settings::API_KEY ) );
		wp_cache_delete( TRP_Settings::API_KEY, 'options' );
		wp_cache_delete( 'notoptions', 'options' );
		$this->assertArrayNotHasKey( 'Authorization', $this->filtered( 'http://localhost:8000/api/status' )['headers'] );
	}
}
