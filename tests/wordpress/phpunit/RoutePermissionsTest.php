<?php
/**
 * Every route, as anonymous, subscriber, trp_view, trp_trade and administrator users: visitors
 * get 401, users without the capability 403, the others reach the backend (its answer passes).
 */
class RoutePermissionsTest extends TRP_TestCase {

	const VIEW_ROUTES = array(
		array( 'GET', 'strategies', array() ),
		array( 'GET', 'strategies/999999', array() ),
		array( 'GET', 'account/info', array() ),
		array( 'GET', 'positions', array() ),
		array( 'GET', 'orders', array() ),
		array( 'GET', 'orders/nonexistent-order', array() ),
		array( 'GET', 'market-data', array( 'symbol' => 'SPY' ) ),
		array( 'GET', 'trades', array() ),
		array( 'GET', 'trades/999999', array() ),
		array( 'GET', 'chart-data', array( 'symbol' => 'SPY' ) ),
		array( 'GET', 'stock-data', array() ),
		array( 'GET', 'stock-data/SPY', array( 'days' => 2 ) ),
		array( 'GET', 'dashboard/overview', array() ),
		array( 'GET', 'performance', array() ),
		array( 'GET', 'status', array() ),
		array( 'GET', 'dashboard/snapshot', array() ),
		array( 'POST', 'websocket/token', array() ),
	);

	/** In this order: the kill switch is engaged, then released. */
	const TRADE_ROUTES = array(
		array( 'POST', 'strategies/999999/execute', array() ),
		array( 'POST', 'orders/submit', array( 'symbol' => 'SPY', 'side' => 'buy', 'qty' => '1', 'client_order_id' => 'phpunit-permissions' ) ),
		array( 'DELETE', 'orders/nonexistent-order', array() ),
		array( 'POST', 'stop_trading', array( 'reason' => 'phpunit' ) ),
		array( 'POST', 'resume_trading', array() ),
	);

	private function assertReached( $kind, $method, $route, $params ) {
		list( $status, $data ) = self::call( $method, $route, $params, $kind );
		$this->assertContains( $status, array( 200, 201, 404 ), "$kind $method $route: " . wp_json_encode( $data ) );
		if ( 404 === $status ) {
			// The backend's own 404 (its error code), not WordPress's rest_no_route.
			$this->assertSame( 'trp_backend_error', $data['code'], "$method $route" );
		}
	}

	private function assertRefused( $kind, $method, $route, $params, $expected ) {
		list( $status, $data ) = self::call( $method, $route, $params, $kind );
		$this->assertSame( $expected, $status, "$kind $method $route: " . wp_json_encode( $data ) );
		$this->assertSame( 'rest_forbidden', $data['code'] );
	}

	public function test_anonymous_gets_401_everywhere() {
		$before = self::backend_order_count();
		foreach ( array_merge( self::VIEW_ROUTES, self::TRADE_ROUTES ) as list( $method, $route, $params ) ) {
			$this->assertRefused( 'anonymous', $method, $route, $params, 401 );
		}
		$this->assertSame( $before, self::backend_order_count() );
	}

	public function test_subscriber_gets_403_everywhere() {
		foreach ( array_merge( self::VIEW_ROUTES, self::TRADE_ROUTES ) as list( $method, $route, $params ) ) {
			$this->assertRefused( 'subscriber', $method, $route, $params, 403 );
		}
	}

	public function test_viewer_reads_but_cannot_trade() {
		foreach ( self::VIEW_ROUTES as list( $method, $route, $params ) ) {
			$this->assertReached( 'viewer', $method, $route, $params );
		}
		$before = self::backend_order_count();
		foreach ( self::TRADE_ROUTES as list( $method, $route, $params ) ) {
			$this->assertRefused( 'viewer', $method, $route, $params, 403 );
		}
		$this->assertSame( $before, self::backend_order_count() );
	}

	public function test_trader_and_admin_reach_every_route() {
		foreach ( array( 'trader', 'admin' ) as $kind ) {
			foreach ( array_merge( self::VIEW_ROUTES, self::TRADE_ROUTES ) as list( $method, $route, $params ) ) {
				$this->assertReached( $kind, $method, $route, $params );
			}
		}
		list( , $status ) = self::call( 'GET', 'status' );
		$this->assertFalse( $status['halted'], 'resume_trading released the kill switch' );
	}

	public function test_trp_view_is_assignable_to_any_role() {
		$editor = wp_insert_user(
			array(
				'user_login' => 'phpunit_editor_' . wp_generate_password( 6, false ),
				'user_pass'  => wp_generate_password(),
				'role'       => 'editor',
			)
		);
		wp_set_current_user( $editor );
		$this->assertFalse( current_user_can( 'trp_view' ) );
		get_role( 'editor' )->add_cap( 'trp_view' );
		try {
			wp_set_current_user( 0 );
			self::$users['editor'] = $editor;
			$this->assertReached( 'editor', 'GET', 'positions', array() );
		} finally {
			get_role( 'editor' )->remove_cap( 'trp_view' );
		}
	}
}
