<?php
/**
 * REST routes under tradingrobotplug/v1, each proxying to the backend's /api/v1/ route of the
 * same name (stock-data answers from the local table).
 *
 * Permissions: reading needs trp_view, trading and the kill switch trp_trade. Cookie-authenticated
 * calls need the REST nonce (core checks X-WP-Nonce); application passwords work as for core.
 * Arguments are validated by their schemas before anything is sent to the backend.
 *
 * @package TradingRobotPlug
 */

defined( 'ABSPATH' ) || exit;

/**
 * The routes.
 */
class TRP_REST_Controller {

	const NAMESPACE_V1 = 'tradingrobotplug/v1';
	const ID_PATTERN   = '[A-Za-z0-9_-]{1,64}';
	const SYMBOL_ARG   = '(?P<symbol>[A-Za-z0-9.\-]{1,16})';

	/**
	 * Reads kept in transients for the "cache seconds" setting: what changes slowly or is kept
	 * current by the stream. Live state (status, snapshot, positions, orders, trades, account)
	 * is always asked afresh, so a dashboard re-fetching after a reconnect misses nothing.
	 */
	const CACHED = array(
		'/api/v1/strategies',
		'/api/v1/strategies/{id}',
		'/api/v1/market-data',
		'/api/v1/chart-data',
		'/api/v1/dashboard/overview',
		'/api/v1/performance',
	);

	/**
	 * Hooks route registration.
	 */
	public static function register() {
		add_action( 'rest_api_init', array( __CLASS__, 'register_routes' ) );
	}

	/**
	 * The symbol argument's schema.
	 *
	 * @param bool $required Required.
	 * @return array
	 */
	private static function symbol_arg( $required ) {
		return array(
			'type'              => 'string',
			'pattern'           => TRP_Settings::SYMBOL_PATTERN,
			'required'          => $required,
			// With a sanitize_callback of its own, the schema is only checked when asked for.
			'validate_callback' => 'rest_validate_request_arg',
			'sanitize_callback' => fn( $v ) => strtoupper( (string) $v ),
		);
	}

	/**
	 * A positive decimal given as a string or a number.
	 *
	 * @param bool $required Required.
	 * @return array
	 */
	private static function decimal_arg( $required ) {
		return array(
			'type'              => array( 'string', 'number' ),
			'required'          => $required,
			'validate_callback' => function ( $value, $request, $param ) {
				if ( ! is_numeric( $value ) || (float) $value <= 0 || ! preg_match( '/^\d{1,12}(\.\d{1,6})?$/', (string) $value ) ) {
					/* translators: %s: parameter name. */
					return new WP_Error( 'rest_invalid_param', sprintf( __( '%s must be a number greater than 0 with at most 6 decimals.', 'tradingrobotplug' ), $param ), array( 'status' => 400 ) );
				}
				return true;
			},
			'sanitize_callback' => fn( $v ) => (string) $v,
		);
	}

	/**
	 * A protective order's leg (take_profit, stop_loss): an object of positive decimals.
	 *
	 * @param string[] $keys     The leg's fields.
	 * @param string   $required The field it must have.
	 * @return array
	 */
	private static function leg_arg( $keys, $required ) {
		return array(
			'type'              => 'object',
			'validate_callback' => function ( $value, $request, $param ) use ( $keys, $required ) {
				if ( ! is_array( $value ) || ! isset( $value[ $required ] ) || array_diff( array_keys( $value ), $keys ) ) {
					/* translators: 1: parameter name, 2: its fields. */
					return new WP_Error( 'rest_invalid_param', sprintf( __( '%1$s must be an object with %2$s.', 'tradingrobotplug' ), $param, implode( ', ', $keys ) ), array( 'status' => 400 ) );
				}
				foreach ( $value as $key => $price ) {
					if ( null !== $price && ( ! is_numeric( $price ) || (float) $price <= 0 || ! preg_match( '/^\d{1,12}(\.\d{1,6})?$/', (string) $price ) ) ) {
						/* translators: %s: parameter name. */
						return new WP_Error( 'rest_invalid_param', sprintf( __( '%s must be a number greater than 0 with at most 6 decimals.', 'tradingrobotplug' ), "$param.$key" ), array( 'status' => 400 ) );
					}
				}
				return true;
			},
			'sanitize_callback' => fn( $v ) => array_map( fn( $p ) => null === $p ? null : (string) $p, (array) $v ),
		);
	}

	/**
	 * Registers every route.
	 */
	public static function register_routes() {
		$view  = array( __CLASS__, 'can_view' );
		$trade = array( __CLASS__, 'can_trade' );
		$id    = '(?P<id>' . self::ID_PATTERN . ')';
		// The backend's list pagination: ?limit=&offset=.
		$page = array(
			'limit'  => array(
				'type'    => 'integer',
				'minimum' => 1,
				'maximum' => 500,
			),
			'offset' => array(
				'type'    => 'integer',
				'minimum' => 0,
				'maximum' => 10000000,
			),
		);

		$routes = array(
			array( 'strategies', 'GET', '/api/v1/strategies', $view, array() ),
			array( "strategies/$id", 'GET', '/api/v1/strategies/{id}', $view, array() ),
			array( "strategies/$id/execute", 'POST', '/api/v1/strategies/{id}/execute', $trade, array() ),
			array( 'account/info', 'GET', '/api/v1/account/info', $view, array() ),
			array( 'positions', 'GET', '/api/v1/positions', $view, array() ),
			array( 'status', 'GET', '/api/v1/status', $view, array() ),
			array( 'dashboard/overview', 'GET', '/api/v1/dashboard/overview', $view, array() ),
			array( 'dashboard/snapshot', 'GET', '/api/v1/dashboard/snapshot', $view, array() ),
			array( 'performance', 'GET', '/api/v1/performance', $view, array() ),
			array(
				'orders',
				'GET',
				'/api/v1/orders',
				$view,
				array(
					'symbol' => self::symbol_arg( false ),
					'status' => array(
						'type'    => 'string',
						'pattern' => '^[a-z_]{1,32}(,[a-z_]{1,32}){0,9}$',
					),
				) + $page,
			),
			array(
				'orders/submit',
				'POST',
				'/api/v1/orders/submit',
				$trade,
				array(
					'symbol'          => self::symbol_arg( true ),
					'side'            => array(
						'type'     => 'string',
						'enum'     => array( 'buy', 'sell' ),
						'required' => true,
					),
					'qty'             => self::decimal_arg( true ),
					'type'            => array(
						'type'    => 'string',
						'enum'    => array( 'market', 'limit', 'stop', 'stop_limit', 'trailing_stop' ),
						'default' => 'market',
					),
					'order_class'     => array(
						'type'    => 'string',
						'enum'    => array( 'simple', 'bracket', 'oco', 'oto' ),
						'default' => 'simple',
					),
					'take_profit'     => self::leg_arg( array( 'limit_price' ), 'limit_price' ),
					'stop_loss'       => self::leg_arg( array( 'stop_price', 'limit_price' ), 'stop_price' ),
					'trail_price'     => self::decimal_arg( false ),
					'trail_percent'   => self::decimal_arg( false ),
					'time_in_force'   => array(
						'type'    => 'string',
						'enum'    => array( 'day', 'gtc', 'ioc', 'fok', 'opg', 'cls' ),
						'default' => 'day',
					),
					'limit_price'     => self::decimal_arg( false ),
					'stop_price'      => self::decimal_arg( false ),
					'client_order_id' => array(
						'type'    => 'string',
						'pattern' => '^[A-Za-z0-9_.:-]{1,128}$',
					),
				),
			),
			array( "orders/$id", 'GET', '/api/v1/orders/{id}', $view, array() ),
			array( "orders/$id", 'DELETE', '/api/v1/orders/{id}', $trade, array() ),
			array(
				'market-data',
				'GET',
				'/api/v1/market-data',
				$view,
				array(
					'symbol'    => self::symbol_arg( true ),
					'timeframe' => array(
						'type' => 'string',
						'enum' => array( '1Min', '5Min', '15Min', '1Hour', '1Day' ),
					),
					'limit'     => array(
						'type'    => 'integer',
						'minimum' => 1,
						'maximum' => 5000,
					),
				),
			),
			array(
				'chart-data',
				'GET',
				'/api/v1/chart-data',
				$view,
				array(
					'symbol'    => self::symbol_arg( true ),
					'timeframe' => array(
						'type' => 'string',
						'enum' => array( '1Min', '5Min', '15Min', '1Hour', '1Day' ),
					),
					'days'      => array(
						'type'    => 'integer',
						'minimum' => 1,
						'maximum' => 366,
					),
				),
			),
			array(
				'trades',
				'GET',
				'/api/v1/trades',
				$view,
				array( 'symbol' => self::symbol_arg( false ) ) + $page,
			),
			array( "trades/$id", 'GET', '/api/v1/trades/{id}', $view, array() ),
			array(
				'stop_trading',
				'POST',
				'/api/v1/stop_trading',
				$trade,
				array(
					'reason'  => array(
						'type'      => 'string',
						'maxLength' => 255,
					),
					'flatten' => array(
						'type'    => 'boolean',
						'default' => false,
					),
				),
			),
			array( 'resume_trading', 'POST', '/api/v1/resume_trading', $trade, array() ),
		);

		foreach ( $routes as list( $route, $method, $backend, $permission, $args ) ) {
			$cached = in_array( $backend, self::CACHED, true );
			register_rest_route(
				self::NAMESPACE_V1,
				'/' . $route,
				array(
					'methods'             => $method,
					'callback'            => function ( WP_REST_Request $request ) use ( $method, $backend, $args, $cached ) {
						return self::proxy( $request, $method, $backend, array_keys( $args ), $cached );
					},
					'permission_callback' => $permission,
					'args'                => $args,
				)
			);
		}

		register_rest_route(
			self::NAMESPACE_V1,
			'/websocket/token',
			array(
				'methods'             => 'POST',
				'callback'            => array( __CLASS__, 'websocket_token' ),
				'permission_callback' => $view,
			)
		);
		register_rest_route(
			self::NAMESPACE_V1,
			'/stock-data',
			array(
				'methods'             => 'GET',
				'callback'            => array( __CLASS__, 'stock_data' ),
				'permission_callback' => $view,
			)
		);
		register_rest_route(
			self::NAMESPACE_V1,
			'/stock-data/' . self::SYMBOL_ARG,
			array(
				'methods'             => 'GET',
				'callback'            => array( __CLASS__, 'stock_data_symbol' ),
				'permission_callback' => $view,
				'args'                => array(
					'days' => array(
						'type'    => 'integer',
						'minimum' => 1,
						'maximum' => 366,
						'default' => 1,
					),
				),
			)
		);
	}

	/**
	 * Permission: read the robot's data.
	 *
	 * @return bool|WP_Error
	 */
	public static function can_view() {
		return current_user_can( TRP_Capabilities::VIEW ) ? true : self::forbidden( TRP_Capabilities::VIEW );
	}

	/**
	 * Permission: trade and use the kill switch.
	 *
	 * @return bool|WP_Error
	 */
	public static function can_trade() {
		return current_user_can( TRP_Capabilities::TRADE ) ? true : self::forbidden( TRP_Capabilities::TRADE );
	}

	/**
	 * 401 for visitors, 403 for users without the capability.
	 *
	 * @param string $capability Capability.
	 * @return WP_Error
	 */
	private static function forbidden( $capability ) {
		$status = is_user_logged_in() ? 403 : 401;
		/* translators: %s: capability name. */
		return new WP_Error( 'rest_forbidden', sprintf( __( 'Sorry, this needs the %s capability.', 'tradingrobotplug' ), $capability ), array( 'status' => $status ) );
	}

	/**
	 * Sends the request to the backend and answers with its JSON (or the mapped error).
	 *
	 * @param WP_REST_Request $request  Request.
	 * @param string          $method   Method.
	 * @param string          $template Backend path with {id}.
	 * @param string[]        $names    Declared argument names (only these are sent).
	 * @param bool            $cached   Whether a GET may be answered from the transient cache.
	 * @return WP_REST_Response|WP_Error
	 */
	public static function proxy( WP_REST_Request $request, $method, $template, $names, $cached = false ) {
		$path = $template;
		if ( str_contains( $template, '{id}' ) ) {
			$path = str_replace( '{id}', rawurlencode( (string) $request['id'] ), $template );
		}
		$data = array();
		foreach ( $names as $name ) {
			$value = $request->get_param( $name );
			if ( null !== $value && '' !== $value ) {
				$data[ $name ] = $value;
			}
		}
		$client = new Trading_Robot_Plug_API_Client();
		$answer = $client->request( $path, $method, $data, array( 'cache' => $cached ) );
		if ( is_wp_error( $answer ) ) {
			return $answer;
		}
		return new WP_REST_Response( $answer, 200 );
	}

	/**
	 * POST websocket/token: a backend stream token for the current user, with where to connect.
	 *
	 * @return WP_REST_Response|WP_Error
	 */
	public static function websocket_token() {
		$client = new Trading_Robot_Plug_API_Client();
		$answer = $client->websocket_token( get_current_user_id() );
		if ( is_wp_error( $answer ) ) {
			return $answer;
		}
		return new WP_REST_Response(
			array(
				'token'      => (string) $answer['token'],
				'expires_at' => (string) ( $answer['expires_at'] ?? '' ),
				'url'        => TRP_Settings::websocket_url(),
			),
			200
		);
	}

	/**
	 * GET stock-data: the newest stored price of each configured symbol.
	 *
	 * @return WP_REST_Response
	 */
	public static function stock_data() {
		return new WP_REST_Response( array( 'stock_data' => TRP_Stock_Data::latest() ) + TRP_Stock_Data::freshness(), 200 );
	}

	/**
	 * GET stock-data/{symbol}?days=N: the stored prices of the last N days, oldest first.
	 *
	 * @param WP_REST_Request $request Request.
	 * @return WP_REST_Response
	 */
	public static function stock_data_symbol( WP_REST_Request $request ) {
		$symbol = strtoupper( (string) $request['symbol'] );
		$days   = (int) $request['days'];
		return new WP_REST_Response(
			array(
				'symbol'     => $symbol,
				'days'       => $days,
				'stock_data' => TRP_Stock_Data::history( $symbol, $days ),
			) + TRP_Stock_Data::freshness(),
			200
		);
	}
}
