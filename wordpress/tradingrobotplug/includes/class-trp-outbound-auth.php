<?php
/**
 * Authenticates code already on the site that calls the backend directly (for example
 * `wp_remote_post( 'http://localhost:8000/api/trade/SPY/buy', ... )` without an Authorization
 * header): the configured API key is added as a Bearer token, with the source label, to requests
 * for exactly the configured backend's scheme, host and port. Never for another host, and never
 * when the request already carries credentials (an Authorization header or cookies).
 *
 * @package TradingRobotPlug
 */

defined( 'ABSPATH' ) || exit;

/**
 * The http_request_args filter.
 */
class TRP_Outbound_Auth {

	/**
	 * Hooks the filter.
	 */
	public static function register() {
		add_filter( 'http_request_args', array( __CLASS__, 'filter' ), 10, 2 );
	}

	/**
	 * Scheme, lower-cased host and port (the scheme's default when absent) of a URL.
	 *
	 * @param string $url URL.
	 * @return string|null "scheme://host:port", or null when it is not an http(s) URL.
	 */
	public static function origin( $url ) {
		$parts = wp_parse_url( (string) $url );
		if ( ! is_array( $parts ) || empty( $parts['scheme'] ) || empty( $parts['host'] ) ) {
			return null;
		}
		$scheme = strtolower( $parts['scheme'] );
		if ( 'http' !== $scheme && 'https' !== $scheme ) {
			return null;
		}
		$port = isset( $parts['port'] ) ? (int) $parts['port'] : ( 'https' === $scheme ? 443 : 80 );
		return $scheme . '://' . strtolower( $parts['host'] ) . ':' . $port;
	}

	/**
	 * Adds the Bearer key to a request for the configured backend.
	 *
	 * @param array  $args Request arguments.
	 * @param string $url  Request URL.
	 * @return array
	 */
	public static function filter( $args, $url ) {
		$key = TRP_Settings::api_key();
		if ( '' === $key ) {
			return $args;
		}
		$target = self::origin( $url );
		if ( null === $target || self::origin( TRP_Settings::backend_url() ) !== $target ) {
			return $args;
		}
		$headers = $args['headers'] ?? array();
		if ( is_string( $headers ) ) {
			// Raw header text: only parse-free cases are safe to extend; leave it alone.
			return $args;
		}
		foreach ( array_keys( (array) $headers ) as $name ) {
			if ( in_array( strtolower( (string) $name ), array( 'authorization', 'cookie' ), true ) ) {
				return $args;
			}
		}
		if ( ! empty( $args['cookies'] ) ) {
			return $args;
		}
		$headers['Authorization'] = 'Bearer ' . $key;
		if ( ! isset( $headers[ Trading_Robot_Plug_API_Client::SOURCE_HEADER ] ) ) {
			$headers[ Trading_Robot_Plug_API_Client::SOURCE_HEADER ] = 'wordpress';
		}
		$args['headers'] = $headers;
		return $args;
	}
}
