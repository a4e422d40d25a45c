<?php
/**
 * Shared helpers: users of each kind, REST calls as a user, the backend's options.
 */

use PHPUnit\Framework\TestCase;

abstract class TRP_TestCase extends TestCase {

	/** @var array<string,int> user ids by kind */
	protected static $users = array();

	public static function setUpBeforeClass(): void {
		if ( ! get_role( 'trp_viewer' ) ) {
			add_role( 'trp_viewer', 'Trading viewer', array( 'read' => true, 'trp_view' => true ) );
		}
		if ( ! get_role( 'trp_trader' ) ) {
			add_role( 'trp_trader', 'Trader', array( 'read' => true, 'trp_view' => true, 'trp_trade' => true ) );
		}
		foreach ( array( 'subscriber' => 'subscriber', 'viewer' => 'trp_viewer', 'trader' => 'trp_trader' ) as $kind => $role ) {
			$login = 'phpunit_' . $kind;
			$user  = get_user_by( 'login', $login );
			self::$users[ $kind ] = $user ? $user->ID : wp_insert_user(
				array(
					'user_login' => $login,
					'user_pass'  => wp_generate_password(),
					'user_email' => $login . '@example.com',
					'role'       => $role,
				)
			);
		}
		self::$users['admin']     = 1;
		self::$users['anonymous'] = 0;
	}

	protected function setUp(): void {
		self::configure( getenv( 'TRP_BACKEND_URL' ), getenv( 'TRP_TRADE_KEY' ) );
	}

	protected function tearDown(): void {
		wp_set_current_user( 0 );
		self::configure( getenv( 'TRP_BACKEND_URL' ), getenv( 'TRP_TRADE_KEY' ) );
	}

	protected static function configure( $url, $key ) {
		update_option( TRP_Settings::BACKEND_URL, $url );
		update_option( TRP_Settings::API_KEY, $key );
		Trading_Robot_Plug_API_Client::flush_cache();
	}

	/**
	 * A REST call to this site's tradingrobotplug/v1 routes, as one kind of user.
	 *
	 * @return array{0:int,1:mixed} status and data
	 */
	protected static function call( $method, $route, $params = array(), $kind = 'admin' ) {
		wp_set_current_user( self::$users[ $kind ] );
		$path    = '/tradingrobotplug/v1/' . $route;
		$query   = array();
		if ( str_contains( $path, '?' ) ) {
			list( $path, $qs ) = explode( '?', $path, 2 );
			parse_str( $qs, $query );
		}
		$request = new WP_REST_Request( $method, $path );
		if ( 'GET' === $method ) {
			$request->set_query_params( $params + $query );
		} else {
			$request->set_query_params( $query );
			$request->set_header( 'Content-Type', 'application/json' );
			$request->set_body( wp_json_encode( (object) $params ) );
		}
		$response = rest_do_request( $request );
		$data     = rest_get_server()->response_to_data( $response, false );
		return array( $response->get_status(), $data );
	}

	/** The backend's order count, read directly with the trade key. */
	protected static function backend_order_count() {
		$client = new Trading_Robot_Plug_API_Client();
		$orders = $client->get( '/api/v1/orders', array(), array( 'cache' => false ) );
		if ( is_wp_error( $orders ) ) {
			throw new RuntimeException( $orders->get_error_message() );
		}
		return (int) ( $orders['count'] ?? count( $orders['results'] ?? $orders ) );
	}
}
