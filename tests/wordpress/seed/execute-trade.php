<?php
/**
 * Legacy site code, exactly as the project's integration roadmap wrote it: it posts straight to
 * the backend with no Authorization header. The plugin's http_request_args filter authenticates
 * it; this file must stay unchanged.
 */

// WordPress Plugin - Execute trade via Trading Robot API
function execute_trade($symbol, $side, $quantity) {
    $trading_api_url = 'http://localhost:8000/api/trade';
    
    $response = wp_remote_post(
        "{$trading_api_url}/{$symbol}/{$side}",
        array(
            'body' => json_encode(array('quantity' => $quantity)),
            'headers' => array('Content-Type' => 'application/json')
        )
    );
    
    if (is_wp_error($response)) {
        return array('status' => 'error', 'message' => $response->get_error_message());
    }
    
    return json_decode(wp_remote_retrieve_body($response), true);
}
