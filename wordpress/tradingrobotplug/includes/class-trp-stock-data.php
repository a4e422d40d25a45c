<?php
/**
 * Stock-data collection: the {prefix}trp_stock_data table, the 5-minute cron job that fills it
 * from the backend, retention, and the reads the stock-data routes answer with.
 *
 * Times are stored in UTC (recorded_at) and answered as MySQL datetimes in the site's timezone
 * ("timestamp"), as the backend's `wordpress` market-data provider reads them.
 *
 * @package TradingRobotPlug
 */

defined( 'ABSPATH' ) || exit;

/**
 * Stock data.
 */
class TRP_Stock_Data {

	const HOOK       = 'trp_collect_stock_data';
	const SCHEDULE   = 'trp_five_minutes';
	const INTERVAL   = 300;
	const DB_VERSION = '1';
	/** A symbol's newest row older than this (two missed collections) is stale. */
	const STALE_AFTER = 900;

	/**
	 * Hooks: the schedule, the job.
	 */
	public static function register() {
		add_filter( 'cron_schedules', array( __CLASS__, 'cron_schedules' ) );
		add_action( self::HOOK, array( __CLASS__, 'collect' ) );
	}

	/**
	 * The table's name.
	 *
	 * @return string
	 */
	public static function table() {
		global $wpdb;
		return $wpdb->prefix . 'trp_stock_data';
	}

	/**
	 * Adds the five-minute schedule.
	 *
	 * @param array $schedules Schedules.
	 * @return array
	 */
	public static function cron_schedules( $schedules ) {
		$schedules[ self::SCHEDULE ] = array(
			'interval' => self::INTERVAL,
			'display'  => __( 'Every five minutes (TradingRobotPlug)', 'tradingrobotplug' ),
		);
		return $schedules;
	}

	/**
	 * Creates or upgrades the table. The unique (symbol, recorded_at) key answers
	 * latest-per-symbol and per-symbol ranges; recorded_at alone answers by-day reads and pruning.
	 */
	public static function create_table() {
		global $wpdb;
		require_once ABSPATH . 'wp-admin/includes/upgrade.php';
		$table   = self::table();
		$charset = $wpdb->get_charset_collate();
		dbDelta(
			"CREATE TABLE $table (
  id bigint(20) unsigned NOT NULL AUTO_INCREMENT,
  symbol varchar(16) NOT NULL,
  price decimal(18,6) NOT NULL,
  open decimal(18,6) DEFAULT NULL,
  high decimal(18,6) DEFAULT NULL,
  low decimal(18,6) DEFAULT NULL,
  close decimal(18,6) DEFAULT NULL,
  volume bigint(20) unsigned DEFAULT NULL,
  recorded_at datetime NOT NULL,
  collected_at datetime NOT NULL,
  PRIMARY KEY  (id),
  UNIQUE KEY symbol_time (symbol,recorded_at),
  KEY recorded_at (recorded_at)
) $charset;"
		);
		update_option( 'trp_db_version', self::DB_VERSION );
	}

	/**
	 * Schedules the job (once).
	 */
	public static function schedule() {
		if ( ! wp_next_scheduled( self::HOOK ) ) {
			wp_schedule_event( time() + 60, self::SCHEDULE, self::HOOK );
		}
	}

	/**
	 * Removes the job.
	 */
	public static function unschedule() {
		wp_clear_scheduled_hook( self::HOOK );
	}

	/**
	 * The job: for each configured symbol, the backend's newest 5-minute bar is stored (its
	 * close as the price, stamped at the bar's end); then rows past retention are deleted.
	 *
	 * @return array{stored:int, errors:string[]}
	 */
	public static function collect() {
		$client = new Trading_Robot_Plug_API_Client();
		$stored = 0;
		$errors = array();
		foreach ( TRP_Settings::symbols() as $symbol ) {
			$answer = $client->get(
				'/api/v1/market-data',
				array(
					'symbol'    => $symbol,
					'timeframe' => '5Min',
					'limit'     => 1,
				),
				array( 'cache' => false )
			);
			if ( is_wp_error( $answer ) ) {
				$errors[] = $symbol . ': ' . $answer->get_error_message();
				continue;
			}
			foreach ( (array) ( $answer['data'] ?? array() ) as $bar ) {
				if ( self::store_bar( $symbol, $bar ) ) {
					++$stored;
				}
			}
		}
		self::prune();
		update_option(
			'trp_last_collection',
			array(
				'at'     => time(),
				'stored' => $stored,
				'errors' => $errors,
			),
			false
		);
		return array(
			'stored' => $stored,
			'errors' => $errors,
		);
	}

	/**
	 * Stores one OHLCV bar from the backend; false when it is malformed.
	 *
	 * @param string $symbol Symbol.
	 * @param mixed  $bar    {"timestamp" (bar start, ISO UTC), "open", "high", "low", "close", "volume"}.
	 * @return bool
	 */
	public static function store_bar( $symbol, $bar ) {
		global $wpdb;
		if ( ! is_array( $bar ) || ! isset( $bar['timestamp'], $bar['close'] ) || ! is_numeric( $bar['close'] ) ) {
			return false;
		}
		$start = strtotime( (string) $bar['timestamp'] );
		if ( false === $start || (float) $bar['close'] <= 0 ) {
			return false;
		}
		$number = fn( $key ) => isset( $bar[ $key ] ) && is_numeric( $bar[ $key ] ) ? (string) $bar[ $key ] : null;
		$row    = array(
			'symbol'       => strtoupper( $symbol ),
			'price'        => (string) $bar['close'],
			'open'         => $number( 'open' ),
			'high'         => $number( 'high' ),
			'low'          => $number( 'low' ),
			'close'        => (string) $bar['close'],
			'volume'       => isset( $bar['volume'] ) && is_numeric( $bar['volume'] ) ? (int) $bar['volume'] : null,
			// The price is the bar's close: it is known at the bar's end.
			'recorded_at'  => gmdate( 'Y-m-d H:i:s', $start + self::INTERVAL ),
			'collected_at' => gmdate( 'Y-m-d H:i:s' ),
		);
		$table   = self::table();
		$columns = implode( ',', array_keys( $row ) );
		$values  = array();
		$formats = array();
		foreach ( $row as $value ) {
			if ( null === $value ) {
				$formats[] = 'NULL';
			} else {
				$formats[] = '%s';
				$values[]  = $value;
			}
		}
		// One row per symbol and time: collecting the same bar again updates it.
		$sql = "INSERT INTO $table ($columns) VALUES (" . implode( ',', $formats ) . ') ON DUPLICATE KEY UPDATE price=VALUES(price), open=VALUES(open), high=VALUES(high), low=VALUES(low), close=VALUES(close), volume=VALUES(volume), collected_at=VALUES(collected_at)';
		// phpcs:ignore WordPress.DB.PreparedSQL.NotPrepared -- table name and placeholders only.
		return false !== $wpdb->query( $wpdb->prepare( $sql, $values ) );
	}

	/**
	 * Deletes rows older than the retention setting.
	 *
	 * @return int Rows deleted.
	 */
	public static function prune() {
		global $wpdb;
		$table  = self::table();
		$cutoff = gmdate( 'Y-m-d H:i:s', time() - TRP_Settings::retention_days() * DAY_IN_SECONDS );
		// phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
		return (int) $wpdb->query( $wpdb->prepare( "DELETE FROM $table WHERE recorded_at < %s", $cutoff ) );
	}

	/**
	 * The newest row of each symbol (of the configured ones).
	 *
	 * @return array[]
	 */
	public static function latest() {
		global $wpdb;
		$table   = self::table();
		$symbols = TRP_Settings::symbols();
		if ( ! $symbols ) {
			return array();
		}
		$in = implode( ',', array_fill( 0, count( $symbols ), '%s' ) );
		// phpcs:disable WordPress.DB.PreparedSQL.InterpolatedNotPrepared
		$rows = $wpdb->get_results(
			$wpdb->prepare(
				"SELECT t.* FROM $table t JOIN (SELECT symbol, MAX(recorded_at) AS recorded_at FROM $table WHERE symbol IN ($in) GROUP BY symbol) m ON m.symbol = t.symbol AND m.recorded_at = t.recorded_at ORDER BY t.symbol",
				$symbols
			),
			ARRAY_A
		);
		// phpcs:enable
		return array_map( array( __CLASS__, 'shape' ), (array) $rows );
	}

	/**
	 * A symbol's rows of the last `days` days, oldest first.
	 *
	 * @param string $symbol Symbol.
	 * @param int    $days   Days.
	 * @return array[]
	 */
	public static function history( $symbol, $days ) {
		global $wpdb;
		$table = self::table();
		$since = gmdate( 'Y-m-d H:i:s', time() - (int) $days * DAY_IN_SECONDS );
		// phpcs:disable WordPress.DB.PreparedSQL.InterpolatedNotPrepared
		$rows = $wpdb->get_results(
			$wpdb->prepare( "SELECT * FROM $table WHERE symbol = %s AND recorded_at >= %s ORDER BY recorded_at", strtoupper( $symbol ), $since ),
			ARRAY_A
		);
		// phpcs:enable
		return array_map( array( __CLASS__, 'shape' ), (array) $rows );
	}

	/**
	 * A row as the routes answer it: numbers as strings, the time in the site's timezone.
	 *
	 * @param array $row Database row.
	 * @return array
	 */
	public static function shape( $row ) {
		$age = time() - (int) strtotime( $row['recorded_at'] . ' UTC' );
		$out = array(
			'symbol'    => $row['symbol'],
			'price'     => self::decimal( $row['price'] ),
			'timestamp' => get_date_from_gmt( $row['recorded_at'] ),
		);
		foreach ( array( 'open', 'high', 'low', 'close' ) as $key ) {
			if ( null !== $row[ $key ] ) {
				$out[ $key ] = self::decimal( $row[ $key ] );
			}
		}
		if ( null !== $row['volume'] ) {
			$out['volume'] = (int) $row['volume'];
		}
		$out['stale'] = $age > self::STALE_AFTER;
		return $out;
	}

	/**
	 * "123.450000" -> "123.45".
	 *
	 * @param string $value Decimal text.
	 * @return string
	 */
	private static function decimal( $value ) {
		$value = (string) $value;
		return str_contains( $value, '.' ) ? rtrim( rtrim( $value, '0' ), '.' ) : $value;
	}

	/**
	 * Whether the last collection failed (the backend is down): answers are then stale.
	 *
	 * @return array{stale:bool, last_collection:mixed}
	 */
	public static function freshness() {
		$last = get_option( 'trp_last_collection', null );
		$down = is_array( $last ) && ! empty( $last['errors'] );
		$old  = ! is_array( $last ) || ( time() - (int) $last['at'] ) > self::STALE_AFTER;
		return array(
			'stale'           => $down || $old,
			'last_collection' => is_array( $last ) ? array(
				'at'     => gmdate( 'c', (int) $last['at'] ),
				'stored' => (int) $last['stored'],
				'errors' => array_values( (array) $last['errors'] ),
			) : null,
		);
	}
}
