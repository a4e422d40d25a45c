<?php
/**
 * Loads the live test WordPress (TRP_WP_DIR) for PHPUnit: the tests call its REST server,
 * options and cron in-process, and the real backend (TRP_BACKEND_URL) over HTTP.
 */

// PHPUnit includes the bootstrap inside a method: WordPress's globals must be declared global.
// (The list WordPress's own test bootstrap relies on, plus the shortcode registry.)
global $table_prefix, $wp_version, $wp_db_version, $tinymce_version, $required_php_version,
	$required_mysql_version, $wp_local_package, $wpdb, $wp_rewrite, $wp, $wp_roles, $wp_filter,
	$wp_actions, $wp_current_filter, $wp_query, $wp_the_query, $wp_locale, $wp_embed,
	$wp_widget_factory, $wp_plugin_paths, $shortcode_tags, $locale, $wp_scripts, $wp_styles,
	$wp_theme_directories, $wp_textdomain_registry, $wp_meta_keys, $wp_post_types,
	$wp_taxonomies, $wp_post_statuses, $wp_rest_server, $current_user, $blog_id;

$_SERVER['HTTP_HOST']   = getenv( 'TRP_WP_HOST' );
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['SERVER_NAME'] = '127.0.0.1';

require getenv( 'TRP_WP_DIR' ) . '/wp-load.php';
require __DIR__ . '/TRP_TestCase.php';
