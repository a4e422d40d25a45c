<?php
/**
 * The table (dbDelta, indexes), the 5-minute cron job, retention, and the stock-data answers in
 * the shapes the backend's `wordpress` market-data provider reads.
 */
class StockDataTest extends TRP_TestCase {

	public function test_table_has_the_columns_and_indexes() {
		global $wpdb;
		$table   = $wpdb->prefix . 'trp_stock_data';
		$columns = $wpdb->get_col( "SHOW COLUMNS FROM $table" );
		foreach ( array( 'symbol', 'price', 'open', 'high', 'low', 'close', 'volume', 'recorded_at' ) as $column ) {
			$this->assertContains( $column, $columns );
		}
		$indexes = array();
		foreach ( $wpdb->get_results( "SHOW INDEX FROM $table", ARRAY_A ) as $row ) {
			$indexes[ $row['Key_name'] ][] = $row['Column_name'];
		}
		$this->assertSame( array( 'symbol', 'recorded_at' ), $indexes['symbol_time'] );
		$this->assertSame( array( 'recorded_at' ), $indexes['recorded_at'] );
	}

	public function test_cron_job_is_scheduled_every_five_minutes() {
		$next = wp_next_scheduled( TRP_Stock_Data::HOOK );
		$this->assertNotFalse( $next );
		$this->assertSame( 'trp_five_minutes', wp_get_schedule( TRP_Stock_Data::HOOK ) );
		$this->assertSame( 300, wp_get_schedules()['trp_five_minutes']['interval'] );
	}

	public function test_collection_stores_the_backends_latest_bars_once() {
		global $wpdb;
		$table = $wpdb->prefix . 'trp_stock_data';
		$wpdb->query( "DELETE FROM $table" );
		do_action( TRP_Stock_Data::HOOK );
		$count = (int) $wpdb->get_var( "SELECT COUNT(*) FROM $table" );
		$this->assertSame( count( TRP_Settings::symbols() ), $count );
		do_action( TRP_Stock_Data::HOOK );
		$this->assertSame( $count, (int) $wpdb->get_var( "SELECT COUNT(*) FROM $table" ), 'the same bar is stored once' );

		// The stored price is the backend's newest close.
		$client = new Trading_Robot_Plug_API_Client();
		$bar    = $client->get( '/api/v1/market-data', array( 'symbol' => 'SPY', 'limit' => 1 ), array( 'cache' => false ) )['data'][0];
		list( $status, $latest ) = self::call( 'GET', 'stock-data', array(), 'viewer' );
		$this->assertSame( 200, $status );
		$spy = array_values( array_filter( $latest['stock_data'], fn( $r ) => 'SPY' === $r['symbol'] ) )[0];
		$this->assertEquals( (float) $bar['close'], (float) $spy['price'] );
		$this->assertEquals( (float) $bar['open'], (float) $spy['open'] );
		$this->assertSame( (int) $bar['volume'], $spy['volume'] );
		// A MySQL datetime in the site's timezone: the bar's end.
		$this->assertMatchesRegularExpression( '/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/', $spy['timestamp'] );
		$end = new DateTime( $spy['timestamp'], wp_timezone() );
		$this->assertSame( strtotime( $bar['timestamp'] ) + 300, $end->getTimestamp() );
	}

	public function test_history_by_days_and_retention() {
		global $wpdb;
		$table = $wpdb->prefix . 'trp_stock_data';
		$old   = gmdate( 'Y-m-d H:i:s', time() - 40 * DAY_IN_SECONDS );
		$week  = gmdate( 'Y-m-d H:i:s', time() - 3 * DAY_IN_SECONDS );
		$now   = gmdate( 'Y-m-d H:i:s' );
		$wpdb->query( $wpdb->prepare( "DELETE FROM $table WHERE symbol = %s", 'TSTX' ) );
		foreach ( array( array( $old, '10.5' ), array( $week, '11.25' ) ) as list( $at, $price ) ) {
			$wpdb->insert( $table, array( 'symbol' => 'TSTX', 'price' => $price, 'recorded_at' => $at, 'collected_at' => $now ) );
		}
		list( $status, $one ) = self::call( 'GET', 'stock-data/tstx', array( 'days' => 1 ), 'viewer' );
		$this->assertSame( 200, $status );
		$this->assertSame( array(), $one['stock_data'] );
		list( , $five ) = self::call( 'GET', 'stock-data/TSTX', array( 'days' => 5 ), 'viewer' );
		$this->assertSame( array( '11.25' ), array_column( $five['stock_data'], 'price' ) );
		$this->assertSame( 'TSTX', $five['stock_data'][0]['symbol'] );
		$this->assertArrayNotHasKey( 'volume', $five['stock_data'][0], 'unknown volume is left out' );
		list( , $all ) = self::call( 'GET', 'stock-data/TSTX', array( 'days' => 60 ), 'viewer' );
		$this->assertSame( array( '10.5', '11.25' ), array_column( $all['stock_data'], 'price' ), 'oldest first' );

		update_option( TRP_Settings::RETENTION, 30 );
		$this->assertGreaterThanOrEqual( 1, TRP_Stock_Data::prune() );
		list( , $all ) = self::call( 'GET', 'stock-data/TSTX', array( 'days' => 60 ), 'viewer' );
		$this->assertSame( array( '11.25' ), array_column( $all['stock_data'], 'price' ) );
		$wpdb->query( $wpdb->prepare( "DELETE FROM $table WHERE symbol = %s", 'TSTX' ) );
	}
}
