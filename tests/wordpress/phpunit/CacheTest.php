<?php
/**
 * Slow-changing reads are kept in transients for "cache seconds" and dropped by age or by any
 * write; live state is always asked afresh.
 */
class CacheTest extends TRP_TestCase {

	private static function cached_keys() {
		global $wpdb;
		return $wpdb->get_col( "SELECT option_name FROM {$wpdb->options} WHERE option_name LIKE '\\_transient\\_trp\\_c\\_%'" );
	}

	protected function tearDown(): void {
		update_option( TRP_Settings::CACHE_SECONDS, 30 );
		parent::tearDown();
	}

	public function test_reads_cached_by_age_and_writes_invalidate() {
		update_option( TRP_Settings::CACHE_SECONDS, 60 );
		$before = self::cached_keys();
		list( $status, $first ) = self::call( 'GET', 'performance', array(), 'viewer' );
		$this->assertSame( 200, $status );
		$new = array_values( array_diff( self::cached_keys(), $before ) );
		$this->assertCount( 1, $new, 'performance is cached' );
		$transient = substr( $new[0], strlen( '_transient_' ) );
		$this->assertSame( $first, get_transient( $transient ) );

		self::call( 'GET', 'positions', array(), 'viewer' );
		self::call( 'GET', 'dashboard/snapshot', array(), 'viewer' );
		$this->assertCount( 1, array_diff( self::cached_keys(), $before ), 'live state is not cached' );

		// A write starts a new cache generation: the next read asks the backend again.
		$generation = (int) get_option( 'trp_cache_generation' );
		self::call( 'POST', 'resume_trading', array(), 'trader' );
		$this->assertSame( $generation + 1, (int) get_option( 'trp_cache_generation' ) );
		self::call( 'GET', 'performance', array(), 'viewer' );
		$this->assertCount( 2, array_diff( self::cached_keys(), $before ) );

		// By age: with one second, the entry is gone two seconds later.
		update_option( TRP_Settings::CACHE_SECONDS, 1 );
		Trading_Robot_Plug_API_Client::flush_cache();
		$before = self::cached_keys();
		self::call( 'GET', 'strategies', array(), 'viewer' );
		$new = array_values( array_diff( self::cached_keys(), $before ) );
		$this->assertCount( 1, $new );
		sleep( 2 );
		$this->assertFalse( get_transient( substr( $new[0], strlen( '_transient_' ) ) ) );

		// Zero seconds: nothing is cached.
		update_option( TRP_Settings::CACHE_SECONDS, 0 );
		$before = self::cached_keys();
		self::call( 'GET', 'strategies', array(), 'viewer' );
		$this->assertSame( array(), array_diff( self::cached_keys(), $before ) );
	}
}
