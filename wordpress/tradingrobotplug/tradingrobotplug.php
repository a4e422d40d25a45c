<?php
/**
 * Plugin Name:       TradingRobotPlug
 * Description:       Connects WordPress to a TradingRobotPlug trading backend: REST routes, a live dashboard shortcode and 5-minute stock-data collection.
 * Version:           1.0.0
 * Requires at least: 6.1
 * Requires PHP:      8.1
 * License:           MIT
 * Text Domain:       tradingrobotplug
 *
 * @package TradingRobotPlug
 */

defined( 'ABSPATH' ) || exit;

define( 'TRP_VERSION', '1.0.0' );
define( 'TRP_PLUGIN_FILE', __FILE__ );
define( 'TRP_PLUGIN_DIR', plugin_dir_path( __FILE__ ) );
define( 'TRP_PLUGIN_URL', plugin_dir_url( __FILE__ ) );

require_once TRP_PLUGIN_DIR . 'includes/class-trp-settings.php';
require_once TRP_PLUGIN_DIR . 'includes/class-trp-capabilities.php';
require_once TRP_PLUGIN_DIR . 'includes/api-client/class-api-client.php';
require_once TRP_PLUGIN_DIR . 'includes/class-trp-stock-data.php';
require_once TRP_PLUGIN_DIR . 'includes/class-trp-outbound-auth.php';
require_once TRP_PLUGIN_DIR . 'includes/class-trp-rest-controller.php';
require_once TRP_PLUGIN_DIR . 'includes/class-trp-activator.php';
require_once TRP_PLUGIN_DIR . 'admin/class-trp-admin.php';
require_once TRP_PLUGIN_DIR . 'public/class-trp-dashboard.php';

register_activation_hook( __FILE__, array( 'TRP_Activator', 'activate' ) );
register_deactivation_hook( __FILE__, array( 'TRP_Activator', 'deactivate' ) );

TRP_Stock_Data::register();
TRP_Outbound_Auth::register();
TRP_REST_Controller::register();
TRP_Admin::register();
TRP_Dashboard::register();
