/**
 * The "TradingRobotPlug dashboard" block: rendered on the server (like the shortcode), so the
 * editor only shows a placeholder and the saved content is the block comment.
 */
(function (blocks, element, i18n) {
  "use strict";
  const el = element.createElement;
  const __ = i18n.__;
  blocks.registerBlockType("tradingrobotplug/dashboard", {
    apiVersion: 2,
    title: __("TradingRobotPlug dashboard", "tradingrobotplug"),
    icon: "chart-line",
    category: "widgets",
    edit: function () {
      return el(
        "div",
        { className: "trp-block-placeholder", style: { padding: "1em", border: "1px dashed #999" } },
        __("TradingRobotPlug dashboard: live charts, positions, orders and trades appear on the published page.", "tradingrobotplug")
      );
    },
    save: function () {
      return null;
    },
  });
})(window.wp.blocks, window.wp.element, window.wp.i18n);
