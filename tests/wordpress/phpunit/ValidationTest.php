<?php
/**
 * Bad input is refused by WordPress's argument schemas with a 400, and nothing reaches the
 * backend (its order count does not move).
 */
class ValidationTest extends TRP_TestCase {

	public function test_bad_orders_are_400_and_send_nothing() {
		$before = self::backend_order_count();
		$bad    = array(
			array( 'symbol' => 'SPY', 'side' => 'hold', 'qty' => '1' ),
			array( 'symbol' => 'SPY', 'side' => 'buy', 'qty' => '-1' ),
			array( 'symbol' => 'SPY', 'side' => 'buy', 'qty' => 'ten' ),
			array( 'symbol' => 'SPY', 'side' => 'buy', 'qty' => '0' ),
			array( 'symbol' => 'NOT A SYMBOL!', 'side' => 'buy', 'qty' => '1' ),
			array( 'symbol' => '<script>', 'side' => 'buy', 'qty' => '1' ),
			array( 'side' => 'buy', 'qty' => '1' ),
			array( 'symbol' => 'SPY', 'side' => 'buy', 'qty' => '1', 'type' => 'bracket' ),
			array( 'symbol' => 'SPY', 'side' => 'buy', 'qty' => '1', 'client_order_id' => str_repeat( 'x', 200 ) ),
			array( 'symbol' => 'SPY', 'side' => 'buy', 'qty' => '1', 'limit_price' => '1e9' ),
			array( 'symbol' => 'SPY', 'side' => 'buy', 'qty' => '1', 'order_class' => 'mleg' ),
			array( 'symbol' => 'SPY', 'side' => 'buy', 'qty' => '1', 'order_class' => 'bracket', 'take_profit' => array( 'price' => '1' ) ),
			array( 'symbol' => 'SPY', 'side' => 'buy', 'qty' => '1', 'order_class' => 'oto', 'stop_loss' => array( 'stop_price' => '-1' ) ),
			array( 'symbol' => 'SPY', 'side' => 'buy', 'qty' => '1', 'order_class' => 'oto', 'stop_loss' => 'cheap' ),
			array( 'symbol' => 'SPY', 'side' => 'sell', 'qty' => '1', 'type' => 'trailing_stop', 'trail_percent' => 'x' ),
		);
		foreach ( $bad as $body ) {
			list( $status, $data ) = self::call( 'POST', 'orders/submit', $body, 'trader' );
			$this->assertSame( 400, $status, wp_json_encode( $body ) );
			$this->assertContains( $data['code'], array( 'rest_invalid_param', 'rest_missing_callback_param' ), wp_json_encode( $body ) );
		}
		$this->assertSame( $before, self::backend_order_count() );
	}

	public function test_bad_query_arguments_are_400() {
		$cases = array(
			array( 'stock-data/SPY', array( 'days' => 0 ) ),
			array( 'stock-data/SPY', array( 'days' => 400 ) ),
			array( 'chart-data', array() ),
			array( 'chart-data', array( 'symbol' => 'SPY', 'timeframe' => '7Min' ) ),
			array( 'market-data', array( 'symbol' => 'SPY', 'limit' => 0 ) ),
			array( 'orders', array( 'status' => 'filled;drop' ) ),
			array( 'trades', array( 'offset' => -1 ) ),
			array( 'orders', array( 'limit' => 501 ) ),
		);
		foreach ( $cases as list( $route, $query ) ) {
			list( $status, $data ) = self::call( 'GET', $route, $query, 'viewer' );
			$this->assertSame( 400, $status, $route . ' ' . wp_json_encode( $query ) );
		}
	}

	public function test_pagination_reaches_the_backend() {
		self::call( 'POST', 'orders/submit', array( 'symbol' => 'SPY', 'side' => 'buy', 'qty' => '1', 'client_order_id' => 'phpunit-page-1' ), 'trader' );
		self::call( 'POST', 'orders/submit', array( 'symbol' => 'QQQ', 'side' => 'buy', 'qty' => '1', 'client_order_id' => 'phpunit-page-2' ), 'trader' );
		list( $status, $page ) = self::call( 'GET', 'orders', array( 'limit' => 1 ), 'viewer' );
		$this->assertSame( 200, $status );
		$this->assertCount( 1, $page['results'] );
		$this->assertGreaterThanOrEqual( 2, $page['count'] );
		list( , $next ) = self::call( 'GET', 'orders', array( 'limit' => 1, 'offset' => 1 ), 'viewer' );
		$this->assertNotSame( $page['results'][0]['id'], $next['results'][0]['id'] );
	}

	public function test_kill_switch_reason_is_bounded() {
		list( $status, ) = self::call( 'POST', 'stop_trading', array( 'reason' => str_repeat( 'r', 300 ) ), 'trader' );
		$this->assertSame( 400, $status );
		list( , $state ) = self::call( 'GET', 'status', array(), 'viewer' );
		$this->assertFalse( $state['halted'] );
	}

	public function test_unknown_route_ids_do_not_match() {
		list( $status, ) = self::call( 'GET', 'orders/' . rawurlencode( '../../admin' ), array(), 'viewer' );
		$this->assertSame( 404, $status );
	}
}
