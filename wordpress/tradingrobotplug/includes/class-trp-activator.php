<?php
/**
 * Activation and deactivation.
 *
 * @package TradingRobotPlug
 */

defined( 'ABSPATH' ) || exit;

/**
 * Activation: options, capabilities, the stock-data table and the cron job.
 */
class TRP_Activator {

	/**
	 * On activation.
	 */
	public static function activate() {
		TRP_Settings::add_defaults();
		TRP_Capabilities::add();
		TRP_Stock_Data::create_table();
		TRP_Stock_Data::schedule();
	}

	/**
	 * On deactivation: the cron job stops; data, options and capabilities stay (uninstall
	 * removes them).
	 */
	public static function deactivate() {
		TRP_Stock_Data::unschedule();
	}
}
