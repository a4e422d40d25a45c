<?php
/**
 * The plugin's options: names, defaults, sanitization and typed getters.
 *
 * The API key lives in its own option, never autoloaded, and is only ever read server-side.
 *
 * @package TradingRobotPlug
 */

defined( 'ABSPATH' ) || exit;

/**
 * Options of the plugin.
 */
class TRP_Settings {

	const GROUP = 'tradingrobotplug';

	const BACKEND_URL   = 'trp_backend_url';
	const FASTAPI_URL   = 'trp_fastapi_url';
	const API_KEY       = 'trp_api_key';
	const SYMBOLS       = 'trp_symbols';
	const CACHE_SECONDS = 'trp_cache_seconds';
	const RETENTION     = 'trp_retention_days';

	/** Options written by the plugin itself (state, not settings). */
	const STATE_OPTIONS = array( 'trp_cache_generation', 'trp_last_collection', 'trp_db_version' );

	const DEFAULT_BACKEND_URL = 'http://localhost:8000';
	const DEFAULT_SYMBOLS     = 'TSLA,QQQ,SPY,NVDA';
	const SYMBOL_PATTERN      = '^[A-Za-z0-9.\-]{1,16}$';

	/**
	 * Every option name the plugin owns (uninstall removes them all).
	 *
	 * @return string[]
	 */
	public static function option_names() {
		return array_merge(
			array( self::BACKEND_URL, self::FASTAPI_URL, self::API_KEY, self::SYMBOLS, self::CACHE_SECONDS, self::RETENTION ),
			self::STATE_OPTIONS
		);
	}

	/**
	 * Creates the options with their defaults; the key is created not autoloaded.
	 */
	public static function add_defaults() {
		add_option( self::BACKEND_URL, self::DEFAULT_BACKEND_URL );
		add_option( self::SYMBOLS, self::DEFAULT_SYMBOLS );
		add_option( self::CACHE_SECONDS, 30 );
		add_option( self::RETENTION, 30 );
		add_option( self::API_KEY, '', '', 'no' );
	}

	/**
	 * Registers the settings (with their sanitize callbacks) for the settings page.
	 */
	public static function register_settings() {
		register_setting(
			self::GROUP,
			self::BACKEND_URL,
			array(
				'type'              => 'string',
				'sanitize_callback' => array( __CLASS__, 'sanitize_backend_url' ),
				'default'           => self::DEFAULT_BACKEND_URL,
				'show_in_rest'      => false,
			)
		);
		register_setting(
			self::GROUP,
			self::API_KEY,
			array(
				'type'              => 'string',
				'sanitize_callback' => array( __CLASS__, 'sanitize_api_key' ),
				'show_in_rest'      => false,
			)
		);
		register_setting(
			self::GROUP,
			self::SYMBOLS,
			array(
				'type'              => 'string',
				'sanitize_callback' => array( __CLASS__, 'sanitize_symbols' ),
				'default'           => self::DEFAULT_SYMBOLS,
				'show_in_rest'      => false,
			)
		);
		register_setting(
			self::GROUP,
			self::CACHE_SECONDS,
			array(
				'type'              => 'integer',
				'sanitize_callback' => array( __CLASS__, 'sanitize_cache_seconds' ),
				'default'           => 30,
				'show_in_rest'      => false,
			)
		);
		register_setting(
			self::GROUP,
			self::RETENTION,
			array(
				'type'              => 'integer',
				'sanitize_callback' => array( __CLASS__, 'sanitize_retention' ),
				'default'           => 30,
				'show_in_rest'      => false,
			)
		);
	}

	/**
	 * A backend URL: http(s) with a host, no credentials, query or fragment; no trailing slash.
	 * Anything else keeps the previous value and reports a settings error.
	 *
	 * @param mixed $value Submitted value.
	 * @return string
	 */
	public static function sanitize_backend_url( $value ) {
		$previous = get_option( self::BACKEND_URL, self::DEFAULT_BACKEND_URL );
		$value    = is_string( $value ) ? trim( $value ) : '';
		$parts    = wp_parse_url( $value );
		$valid    = is_array( $parts )
			&& isset( $parts['scheme'], $parts['host'] )
			&& in_array( strtolower( $parts['scheme'] ), array( 'http', 'https' ), true )
			&& ! isset( $parts['user'] ) && ! isset( $parts['pass'] )
			&& ! isset( $parts['query'] ) && ! isset( $parts['fragment'] )
			&& strlen( $value ) <= 2048;
		if ( ! $valid ) {
			self::error( self::BACKEND_URL, __( 'The backend URL must be an http:// or https:// address such as https://robot.example.com (no user, query or fragment). The previous URL is kept.', 'tradingrobotplug' ) );
			return (string) $previous;
		}
		return untrailingslashit( esc_url_raw( $value, array( 'http', 'https' ) ) );
	}

	/**
	 * The API key: an empty submission keeps the stored key (the form never shows it).
	 *
	 * @param mixed $value Submitted value.
	 * @return string
	 */
	public static function sanitize_api_key( $value ) {
		$previous = (string) get_option( self::API_KEY, '' );
		$value    = is_string( $value ) ? trim( $value ) : '';
		if ( '' === $value ) {
			return $previous;
		}
		if ( ! preg_match( '/^[\x21-\x7E]{8,256}$/', $value ) ) {
			self::error( self::API_KEY, __( 'The API key must be 8 to 256 printable characters without spaces. The previous key is kept.', 'tradingrobotplug' ) );
			return $previous;
		}
		return $value;
	}

	/**
	 * Symbols: a comma- or space-separated list of tickers, upper-cased, de-duplicated.
	 *
	 * @param mixed $value Submitted value.
	 * @return string
	 */
	public static function sanitize_symbols( $value ) {
		$previous = get_option( self::SYMBOLS, self::DEFAULT_SYMBOLS );
		$items    = preg_split( '/[\s,]+/', is_string( $value ) ? strtoupper( $value ) : '', -1, PREG_SPLIT_NO_EMPTY );
		$bad      = array_filter( $items, fn( $s ) => ! preg_match( '/' . self::SYMBOL_PATTERN . '/', $s ) );
		if ( ! $items || $bad || count( $items ) > 50 ) {
			self::error( self::SYMBOLS, __( 'Symbols must be 1 to 50 tickers (letters, digits, "." or "-"), separated by commas. The previous list is kept.', 'tradingrobotplug' ) );
			return (string) $previous;
		}
		return implode( ',', array_values( array_unique( $items ) ) );
	}

	/**
	 * Cache seconds: 0 (no cache) to 3600.
	 *
	 * @param mixed $value Submitted value.
	 * @return int
	 */
	public static function sanitize_cache_seconds( $value ) {
		return self::bounded_int( self::CACHE_SECONDS, $value, 0, 3600, 30 );
	}

	/**
	 * Retention days: 1 to 3650.
	 *
	 * @param mixed $value Submitted value.
	 * @return int
	 */
	public static function sanitize_retention( $value ) {
		return self::bounded_int( self::RETENTION, $value, 1, 3650, 30 );
	}

	/**
	 * An integer within bounds, or the previous value with a settings error.
	 *
	 * @param string $option   Option name.
	 * @param mixed  $value    Submitted value.
	 * @param int    $low      Lowest value.
	 * @param int    $high     Highest value.
	 * @param int    $fallback Default when nothing is stored.
	 * @return int
	 */
	private static function bounded_int( $option, $value, $low, $high, $fallback ) {
		if ( is_int( $value ) || ( is_string( $value ) && preg_match( '/^\s*\d{1,9}\s*$/', $value ) ) ) {
			$number = (int) $value;
			if ( $number >= $low && $number <= $high ) {
				return $number;
			}
		}
		/* translators: 1: lowest value, 2: highest value. */
		self::error( $option, sprintf( __( 'Expected a whole number from %1$d to %2$d. The previous value is kept.', 'tradingrobotplug' ), $low, $high ) );
		return (int) get_option( $option, $fallback );
	}

	/**
	 * Reports a settings error when the Settings API is loaded (the admin screen).
	 *
	 * @param string $option  Option name.
	 * @param string $message Message.
	 */
	private static function error( $option, $message ) {
		if ( function_exists( 'add_settings_error' ) ) {
			add_settings_error( $option, $option . '_invalid', $message );
		}
	}

	/**
	 * The backend's base URL without a trailing slash.
	 *
	 * @return string
	 */
	public static function backend_url() {
		return untrailingslashit( (string) get_option( self::BACKEND_URL, self::DEFAULT_BACKEND_URL ) );
	}

	/**
	 * The stored API key ('' when none). Server-side only.
	 *
	 * @return string
	 */
	public static function api_key() {
		return (string) get_option( self::API_KEY, '' );
	}

	/**
	 * The key as the settings page shows it: its last four characters only.
	 *
	 * @return string
	 */
	public static function api_key_hint() {
		$key = self::api_key();
		if ( '' === $key ) {
			return '';
		}
		return str_repeat( '•', 8 ) . substr( $key, -4 );
	}

	/**
	 * Configured symbols.
	 *
	 * @return string[]
	 */
	public static function symbols() {
		$raw = (string) get_option( self::SYMBOLS, self::DEFAULT_SYMBOLS );
		return array_values( array_filter( explode( ',', $raw ) ) );
	}

	/**
	 * Seconds a backend read is cached.
	 *
	 * @return int
	 */
	public static function cache_seconds() {
		return max( 0, (int) get_option( self::CACHE_SECONDS, 30 ) );
	}

	/**
	 * Days of stock data kept.
	 *
	 * @return int
	 */
	public static function retention_days() {
		return max( 1, (int) get_option( self::RETENTION, 30 ) );
	}

	/**
	 * The backend's WebSocket URL: its base URL with ws(s):// and /ws/updates.
	 *
	 * @return string
	 */
	public static function websocket_url() {
		$url = self::backend_url();
		$url = preg_replace( '#^http(s?)://#i', 'ws$1://', $url );
		return $url . '/ws/updates';
	}
}
