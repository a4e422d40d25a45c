<?php
/**
 * Uninstall: drops the stock-data table and removes the options, transients, capabilities and
 * the cron job.
 *
 * @package TradingRobotPlug
 */

defined( 'WP_UNINSTALL_PLUGIN' ) || exit;

require_once __DIR__ . '/includes/class-trp-settings.php';
require_once __DIR__ . '/includes/class-trp-capabilities.php';

global $wpdb;

wp_clear_scheduled_hook( 'trp_collect_stock_data' );

foreach ( TRP_Settings::option_names() as $trp_option ) {
	delete_option( $trp_option );
}
// Cached backend reads and connection-test results.
$wpdb->query( "DELETE FROM {$wpdb->options} WHERE option_name LIKE '\\_transient\\_trp\\_%' OR option_name LIKE '\\_transient\\_timeout\\_trp\\_%'" ); // phpcs:ignore WordPress.DB.DirectDatabaseQuery

TRP_Capabilities::remove();

$wpdb->query( "DROP TABLE IF EXISTS {$wpdb->prefix}trp_stock_data" ); // phpcs:ignore WordPress.DB.DirectDatabaseQuery
