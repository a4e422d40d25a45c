<?php
/**
 * The plugin's capabilities: trp_view (read the robot's data) and trp_trade (orders, kill switch).
 *
 * Administrators get both on activation; other roles can be given them with any role editor
 * (or WP_Role::add_cap). Uninstall removes them from every role.
 *
 * @package TradingRobotPlug
 */

defined( 'ABSPATH' ) || exit;

/**
 * Capabilities.
 */
class TRP_Capabilities {

	const VIEW  = 'trp_view';
	const TRADE = 'trp_trade';

	/**
	 * Gives administrators both capabilities.
	 */
	public static function add() {
		$role = get_role( 'administrator' );
		if ( $role ) {
			$role->add_cap( self::VIEW );
			$role->add_cap( self::TRADE );
		}
	}

	/**
	 * Takes both capabilities from every role.
	 */
	public static function remove() {
		foreach ( wp_roles()->role_objects as $role ) {
			$role->remove_cap( self::VIEW );
			$role->remove_cap( self::TRADE );
		}
	}
}
