<?php
/**
 * The backend's HTTP client: Bearer auth, timeouts, JSON in and out, one error shape.
 *
 * Every failure is a WP_Error whose data carries the HTTP status WordPress should answer with:
 *  - trp_backend_unreachable (503): connection refused, timeout, DNS;
 *  - trp_backend_tls (502): the TLS handshake or certificate failed;
 *  - trp_backend_auth (502): the backend refused the plugin's API key (401);
 *  - trp_backend_scope (502): the key lacks the scope (403, e.g. a read key asked to trade);
 *  - trp_backend_error: the backend's own {"error": {"code", "message", "details"}} answer,
 *    with its status for 4xx (400, 404, 409, 429) and 502 for 5xx.
 *
 * Reads (GET) are cached in transients for the "cache seconds" setting; any write clears them.
 *
 * @package TradingRobotPlug
 */

defined( 'ABSPATH' ) || exit;

/**
 * The client of the Trading Robot backend (the class name and seed-compatible methods are the
 * ones existing plugin code calls).
 */
class Trading_Robot_Plug_API_Client {

	const TIMEOUT       = 10;
	const MAX_BYTES     = 4194304;
	const SOURCE_HEADER = 'X-TRP-Source';

	/** @var string */
	private $base_url;

	/** @var string */
	private $api_key;

	/** @var string */
	private $fastapi_url;

	/**
	 * Reads the backend's URL and key from the plugin's options.
	 */
	public function __construct() {
		$this->base_url    = TRP_Settings::backend_url();
		$fastapi           = (string) get_option( TRP_Settings::FASTAPI_URL, '' );
		$this->fastapi_url = '' !== $fastapi ? untrailingslashit( $fastapi ) : $this->base_url;
		$this->api_key     = TRP_Settings::api_key();
	}

	/**
	 * The backend's base URL.
	 *
	 * @return string
	 */
	public function base_url() {
		return $this->base_url;
	}

	/**
	 * One call to the backend.
	 *
	 * @param string     $path   Path beginning with '/', e.g. '/api/v1/status'.
	 * @param string     $method GET, POST, PUT or DELETE.
	 * @param array|null $data   Query arguments for GET, a JSON body otherwise.
	 * @param array      $opts   'cache' => false to skip the transient cache; 'timeout' => seconds.
	 * @return array|WP_Error The decoded JSON answer, or the error.
	 */
	public function request( $path, $method = 'GET', $data = null, $opts = array() ) {
		$method = strtoupper( (string) $method );
		if ( ! in_array( $method, array( 'GET', 'POST', 'PUT', 'DELETE' ), true ) ) {
			return new WP_Error( 'trp_bad_method', 'Unsupported method.', array( 'status' => 500 ) );
		}
		$url = $this->base_url . '/' . ltrim( (string) $path, '/' );
		if ( 'GET' === $method && ! empty( $data ) ) {
			$url = add_query_arg( array_map( 'rawurlencode', (array) $data ), $url );
		}
		$use_cache = 'GET' === $method && ( $opts['cache'] ?? true ) && TRP_Settings::cache_seconds() > 0;
		// The key is part of the cache key: another key may see other data (or none).
		$cache_key = $use_cache ? self::cache_key( $url . '|' . $this->api_key ) : '';
		if ( $use_cache ) {
			$hit = get_transient( $cache_key );
			if ( is_array( $hit ) ) {
				return $hit;
			}
		}

		$args = array(
			'method'              => $method,
			'timeout'             => (float) ( $opts['timeout'] ?? self::TIMEOUT ),
			'redirection'         => 0,
			'limit_response_size' => self::MAX_BYTES,
			'headers'             => $this->headers( 'GET' !== $method ),
		);
		if ( 'GET' !== $method ) {
			// An empty body is the empty object, never a JSON list.
			$args['body'] = wp_json_encode( empty( $data ) ? new stdClass() : $data );
		}
		$result = self::decode( wp_remote_request( $url, $args ), $url );
		if ( 'GET' !== $method ) {
			self::flush_cache();
		} elseif ( $use_cache && ! is_wp_error( $result ) ) {
			set_transient( $cache_key, $result, TRP_Settings::cache_seconds() );
		}
		return $result;
	}

	/**
	 * GET one backend path.
	 *
	 * @param string $path  Path.
	 * @param array  $query Query arguments.
	 * @param array  $opts  See request().
	 * @return array|WP_Error
	 */
	public function get( $path, $query = array(), $opts = array() ) {
		return $this->request( $path, 'GET', $query, $opts );
	}

	/**
	 * Seed-compatible call: `$endpoint` on the "FastAPI" URL (the trp_fastapi_url option, else
	 * the backend URL), with the key; the decoded answer or a WP_Error.
	 *
	 * @param string $endpoint Path such as '/api/v1/status'.
	 * @param string $method   HTTP method.
	 * @param array  $data     Body for POST/PUT.
	 * @return array|WP_Error
	 */
	public function get_fastapi_endpoint( $endpoint, $method = 'GET', $data = array() ) {
		$url  = $this->fastapi_url . $endpoint;
		$args = array(
			'method'              => $method,
			'timeout'             => self::TIMEOUT,
			'redirection'         => 0,
			'limit_response_size' => self::MAX_BYTES,
			'headers'             => $this->headers( true ),
		);
		if ( 'POST' === $method || 'PUT' === $method ) {
			$args['body'] = wp_json_encode( $data );
		}
		$response = wp_remote_request( $url, $args );
		return $this->handle_response( $response );
	}

	/**
	 * Turns a wp_remote_request() result into the decoded answer or the one WP_Error shape.
	 *
	 * @param array|WP_Error $response The response.
	 * @return array|WP_Error
	 */
	public function handle_response( $response ) {
		return self::decode( $response, $this->fastapi_url );
	}

	/**
	 * A WebSocket token for a WordPress user (seed-compatible): the token string or null.
	 *
	 * @param int $user_id WordPress user id.
	 * @return string|null
	 */
	public function get_websocket_token( $user_id ) {
		$answer = $this->websocket_token( $user_id );
		return is_wp_error( $answer ) ? null : ( $answer['token'] ?? null );
	}

	/**
	 * A WebSocket token with its expiry: {"token", "expires_at"}, or the error.
	 *
	 * @param int $user_id WordPress user id.
	 * @return array|WP_Error
	 */
	public function websocket_token( $user_id ) {
		$answer = $this->request( '/api/v1/websocket/token', 'POST', array( 'user_id' => 'wp:' . (int) $user_id ) );
		if ( ! is_wp_error( $answer ) && empty( $answer['token'] ) ) {
			return new WP_Error( 'trp_backend_error', 'The backend answered without a token.', array( 'status' => 502 ) );
		}
		return $answer;
	}

	/**
	 * Request headers: JSON, the Bearer key, and the source label the backend records.
	 *
	 * @param bool $with_body Whether a JSON body is sent.
	 * @return array
	 */
	private function headers( $with_body ) {
		$headers = array(
			'Accept'            => 'application/json',
			self::SOURCE_HEADER => 'wordpress',
			'User-Agent'        => 'TradingRobotPlug-WordPress/' . TRP_VERSION,
		);
		if ( '' !== $this->api_key ) {
			$headers['Authorization'] = 'Bearer ' . $this->api_key;
		}
		if ( $with_body ) {
			$headers['Content-Type'] = 'application/json';
		}
		return $headers;
	}

	/**
	 * The decoded JSON of a response, or the WP_Error describing what went wrong.
	 *
	 * @param array|WP_Error $response wp_remote_request() result.
	 * @param string         $url      What was called (for messages).
	 * @return array|WP_Error
	 */
	public static function decode( $response, $url ) {
		$host = wp_parse_url( $url, PHP_URL_HOST ) . ( wp_parse_url( $url, PHP_URL_PORT ) ? ':' . wp_parse_url( $url, PHP_URL_PORT ) : '' );
		if ( is_wp_error( $response ) ) {
			$message = $response->get_error_message();
			if ( preg_match( '/ssl|tls|certificate/i', $message ) ) {
				return new WP_Error(
					'trp_backend_tls',
					sprintf( 'The trading backend at %s failed the TLS (https) check: %s', $host, $message ),
					array( 'status' => 502 )
				);
			}
			return new WP_Error(
				'trp_backend_unreachable',
				sprintf( 'The trading backend at %s could not be reached: %s', $host, $message ),
				array( 'status' => 503 )
			);
		}
		$status = (int) wp_remote_retrieve_response_code( $response );
		$body   = json_decode( (string) wp_remote_retrieve_body( $response ), true );
		$error  = is_array( $body ) && isset( $body['error'] ) && is_array( $body['error'] ) ? $body['error'] : null;
		if ( $status >= 200 && $status < 300 ) {
			if ( ! is_array( $body ) ) {
				return new WP_Error( 'trp_backend_error', sprintf( 'The trading backend at %s answered something that is not JSON.', $host ), array( 'status' => 502 ) );
			}
			return $body;
		}
		$backend_message = $error['message'] ?? ( is_array( $body ) && isset( $body['message'] ) ? (string) $body['message'] : '' );
		$data            = array(
			'backend_status' => $status,
			'backend_error'  => $error,
		);
		if ( 401 === $status ) {
			return new WP_Error( 'trp_backend_auth', sprintf( 'The trading backend refused the plugin\'s API key (401: %s). Set a valid key under Settings → TradingRobotPlug.', $backend_message ), $data + array( 'status' => 502 ) );
		}
		if ( 403 === $status ) {
			return new WP_Error( 'trp_backend_scope', sprintf( 'The plugin\'s API key lacks the scope for this (403: %s). Trading needs a key with the "trade" scope.', $backend_message ), $data + array( 'status' => 502 ) );
		}
		if ( '' === $backend_message ) {
			$backend_message = sprintf( 'The trading backend at %s answered HTTP %d.', $host, $status );
		}
		if ( 503 === $status ) {
			$wp_status = 503;
		} elseif ( $status >= 400 && $status < 500 ) {
			$wp_status = $status;
		} else {
			$wp_status = 502;
		}
		return new WP_Error( 'trp_backend_error', $backend_message, $data + array( 'status' => $wp_status ) );
	}

	/**
	 * The transient name of a cached GET: one generation per flush, so a write clears them all.
	 *
	 * @param string $url Full URL.
	 * @return string
	 */
	private static function cache_key( $url ) {
		$generation = (int) get_option( 'trp_cache_generation', 0 );
		return 'trp_c_' . $generation . '_' . md5( $url );
	}

	/**
	 * Forgets every cached read (after an order, a cancel, the kill switch).
	 */
	public static function flush_cache() {
		update_option( 'trp_cache_generation', (int) get_option( 'trp_cache_generation', 0 ) + 1, true );
	}
}
