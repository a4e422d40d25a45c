<?php
/**
 * Loads the live test WordPress (TRP_WP_DIR) for PHPUnit: the tests call its REST server,
 * options and cron in-process, and the real backend (TRP_BACKEND_URL) over HTTP.
 */

// PHPUnit includes the bootstrap inside a method: WordPress's globals must be declared global.
global $table_prefix, $wp_version, $wpdb, $wp_rewrite, $wp, $wp_roles, $wp_filter, $wp_actions;

$_SERVER['HTTP_HOST']   = getenv( 'TRP_WP_HOST' );
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['SERVER_NAME'] = '127.0.0.1';

require getenv( 'TRP_WP_DIR' ) . '/wp-load.php';
require __DIR__ . '/TRP_TestCase.php';
