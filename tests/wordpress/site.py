"""A real WordPress for the plugin's tests: Debian's WordPress (/usr/share/wordpress) copied into
a temporary directory, a database of its own on the machine's MariaDB, installed without wp-cli
(a PHP script calling wp_install()), served by `php -S` with a router, the plugin built from the
repository (wordpress/build_plugin.py) and activated. `close()` stops the server's whole process
group and drops the database."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import textwrap
import time
import urllib.request
import uuid
from pathlib import Path

CORE = Path("/usr/share/wordpress")
THEME = "twentytwentythree"
MARIADB = ("127.0.0.1", 3306)

ROUTER = """<?php
// php -S router: real files are served as they are, everything else goes to index.php.
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$file = __DIR__ . $path;
if ($path !== '/' && is_file($file) && !str_ends_with($path, '.php')) {
    return false;
}
if ($path !== '/' && is_file($file)) {
    $_SERVER['SCRIPT_NAME'] = $path;
    $_SERVER['SCRIPT_FILENAME'] = $file;
    chdir(dirname($file));
    require $file;
    return;
}
$_SERVER['SCRIPT_NAME'] = '/index.php';
$_SERVER['SCRIPT_FILENAME'] = __DIR__ . '/index.php';
require __DIR__ . '/index.php';
"""

# Test-only must-use plugin: when the option is set, this site's HTTP calls to one host:port are
# connected to another (as an /etc/hosts entry would), so code that hard-codes
# http://localhost:8000 reaches the test's backend unchanged.
CONNECT_TO_MU_PLUGIN = """<?php
add_action('http_api_curl', function ($handle) {
    $map = get_option('trp_test_connect_to');
    if (is_string($map) && $map !== '') {
        curl_setopt($handle, CURLOPT_CONNECT_TO, [$map]);
    }
});
"""


def missing_requirements() -> str | None:
    """Why the WordPress suite cannot run here, or None."""
    if not shutil.which("php"):
        return "php is not installed (Debian: php-cli php-mysql php-curl php-xml php-mbstring)"
    if not (CORE / "wp-load.php").exists():
        return "Debian's wordpress package is not installed (/usr/share/wordpress)"
    if not (CORE / "wp-content" / "themes" / THEME).exists():
        return f"Debian's wordpress-theme-{THEME} is not installed"
    if not shutil.which("phpunit"):
        return "Debian's phpunit is not installed"
    probe = subprocess.run(
        ["php", "-r", "exit(extension_loaded('mysqli') && extension_loaded('curl') ? 0 : 1);"],
        check=False,
    )
    if probe.returncode:
        return "PHP's mysqli or curl extension is missing (php-mysql, php-curl)"
    try:
        with socket.create_connection(MARIADB, timeout=2):
            pass
    except OSError:
        return f"MariaDB is not listening on {MARIADB[0]}:{MARIADB[1]}"
    return None


def _build_plugin_module():
    """wordpress/build_plugin.py, loaded by path (`wordpress` is also this test package's name)."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "wordpress" / "build_plugin.py"
    spec = importlib.util.spec_from_file_location("trp_build_plugin", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _mysql(sql: str) -> None:
    code = (
        "$db = new mysqli('127.0.0.1', 'root', '', '', 3306);"
        "if (!$db->query(getenv('SQL'))) { fwrite(STDERR, $db->error); exit(1); }"
    )
    subprocess.run(["php", "-r", code], env={**os.environ, "SQL": sql}, check=True)


class WordPressSite:
    def __init__(self, root: Path, log_dir: Path) -> None:
        self.root = root
        self.log_dir = log_dir
        self.db_name = "trp_wp_" + uuid.uuid4().hex[:12]
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.rest = f"{self.base}/wp-json/tradingrobotplug/v1"
        self.server: subprocess.Popen | None = None
        self.admin_password = "admin-" + uuid.uuid4().hex[:10]

    # --- setup ------------------------------------------------------------------------------

    def install(self) -> WordPressSite:
        subprocess.run(["cp", "-rL", str(CORE), str(self.root)], check=True)
        for leftover in (".htaccess", "wp-content/db.php"):
            (self.root / leftover).unlink(missing_ok=True)
        _mysql(f"CREATE DATABASE `{self.db_name}` CHARACTER SET utf8mb4")
        (self.root / "wp-config.php").write_text(self._config())
        (self.root / "router.php").write_text(ROUTER)
        mu = self.root / "wp-content" / "mu-plugins"
        mu.mkdir(exist_ok=True)
        (mu / "trp-test-connect-to.php").write_text(CONNECT_TO_MU_PLUGIN)
        self.php(
            f"""
            require_once ABSPATH . 'wp-admin/includes/upgrade.php';
            wp_install('TRP test', 'admin', 'admin@example.com', true, '',
                       {json.dumps(self.admin_password)});
            update_option('timezone_string', 'America/New_York');
            update_option('permalink_structure', '/%postname%/');
            switch_theme({json.dumps(THEME)});
            flush_rewrite_rules();
            echo 'installed';
            """,
            installing=True,
        )
        # The plugin goes in the way "Upload Plugin" puts it: the built zip through
        # Plugin_Upgrader (wp-admin/update.php?action=upload-plugin runs the same installer).
        package = _build_plugin_module().package
        zip_path = package(self.log_dir / "tradingrobotplug.zip", self.log_dir / "build")
        out = self.php(
            """
            require_once ABSPATH . 'wp-admin/includes/admin.php';
            require_once ABSPATH . 'wp-admin/includes/class-wp-upgrader.php';
            WP_Filesystem();
            $upgrader = new Plugin_Upgrader(new Automatic_Upgrader_Skin());
            $installed = $upgrader->install(getenv('TRP_PLUGIN_ZIP'));
            if ($installed !== true) {
                echo 'install failed: ', wp_json_encode($upgrader->skin->get_upgrade_messages());
                exit;
            }
            $r = activate_plugin($upgrader->plugin_info());
            echo is_wp_error($r) ? $r->get_error_message() : 'active ' . $upgrader->plugin_info();
            """,
            env={"TRP_PLUGIN_ZIP": str(zip_path)},
        )
        assert out.strip().endswith("active tradingrobotplug/tradingrobotplug.php"), out
        return self

    def _config(self) -> str:
        salts = "\n".join(
            f"define('{name}', '{uuid.uuid4().hex}{uuid.uuid4().hex}');"
            for name in [
                *("AUTH_KEY", "SECURE_AUTH_KEY", "LOGGED_IN_KEY", "NONCE_KEY"),
                *("AUTH_SALT", "SECURE_AUTH_SALT", "LOGGED_IN_SALT", "NONCE_SALT"),
            ]
        )
        return (
            (
                f"""\
            <?php
            define('DB_NAME', '{self.db_name}');
            define('DB_USER', 'root');
            define('DB_PASSWORD', '');
            define('DB_HOST', '127.0.0.1:3306');
            define('DB_CHARSET', 'utf8mb4');
            define('DB_COLLATE', '');
            {salts}
            define('WP_HOME', '{self.base}');
            define('WP_SITEURL', '{self.base}');
            define('WP_ENVIRONMENT_TYPE', 'local');
            define('DISABLE_WP_CRON', true);
            define('WP_HTTP_BLOCK_EXTERNAL', true);
            define('AUTOMATIC_UPDATER_DISABLED', true);
            define('FS_METHOD', 'direct');
            define('WP_DEBUG', true);
            define('WP_DEBUG_DISPLAY', false);
            define('WP_DEBUG_LOG', '{self.log_dir}/wordpress-debug.log');
            $table_prefix = 'wp_';
            if (!defined('ABSPATH')) {{ define('ABSPATH', __DIR__ . '/'); }}
            require_once ABSPATH . 'wp-settings.php';
            """
            )
            .replace("\n            ", "\n")
            .removeprefix("            ")
        )

    # --- running PHP inside WordPress --------------------------------------------------------

    def php(
        self, code: str, *, installing: bool = False, timeout: float = 60, env: dict | None = None
    ) -> str:
        """Run `code` inside this WordPress (wp-load.php) in a PHP CLI process; its stdout."""
        head = textwrap.dedent(
            f"""\
            <?php
            $_SERVER['HTTP_HOST'] = '127.0.0.1:{self.port}';
            $_SERVER['REQUEST_URI'] = '/';
            $_SERVER['SERVER_NAME'] = '127.0.0.1';
            $_SERVER['SERVER_PORT'] = '{self.port}';
            {"define('WP_INSTALLING', true);" if installing else ""}
            {"function wp_new_blog_notification() {}" if installing else ""}
            require '{self.root}/wp-load.php';
            """
        )
        script = self.root / f".run-{uuid.uuid4().hex}.php"
        script.write_text(head + textwrap.dedent(code))
        try:
            result = subprocess.run(
                ["php", str(script)],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                env={**os.environ, **(env or {})},
            )
        finally:
            script.unlink(missing_ok=True)
        if result.returncode:
            raise RuntimeError(f"PHP failed ({result.returncode}): {result.stdout}{result.stderr}")
        return result.stdout

    def php_json(self, code: str):
        return json.loads(self.php(code).strip().splitlines()[-1])

    def set_options(self, **options) -> None:
        """update_option() each name with its (JSON-compatible) value."""
        self.php(
            "foreach (json_decode(getenv('TRP_OPTIONS'), true) as $k => $v) {\n"
            "    update_option($k, $v);\n"
            "}",
            env={"TRP_OPTIONS": json.dumps(options)},
        )

    # --- serving -------------------------------------------------------------------------------

    def start(self, timeout: float = 20) -> WordPressSite:
        log = open(self.log_dir / "php-server.log", "ab")  # noqa: SIM115
        self.server = subprocess.Popen(
            [
                "php",
                "-S",
                f"127.0.0.1:{self.port}",
                "-t",
                str(self.root),
                str(self.root / "router.php"),
            ],
            cwd=self.root,
            env={**os.environ, "PHP_CLI_SERVER_WORKERS": "4"},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.server.poll() is None, "php -S exited; see php-server.log"
            try:
                with urllib.request.urlopen(self.base + "/wp-json/", timeout=5):
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("WordPress did not start")

    def close(self) -> None:
        if self.server is not None and self.server.poll() is None:
            try:
                os.killpg(self.server.pid, signal.SIGTERM)
                self.server.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.server.pid, signal.SIGKILL)
                self.server.wait()
        self.server = None
        _mysql(f"DROP DATABASE IF EXISTS `{self.db_name}`")
        shutil.rmtree(self.root, ignore_errors=True)


class UntrustedTLSServer:
    """An HTTPS server on 127.0.0.1 with a fresh self-signed certificate (that no client trusts):
    what a backend behind a misconfigured TLS proxy looks like to WordPress."""

    def __init__(self, directory: Path) -> None:
        import ssl
        import threading
        from datetime import UTC, datetime, timedelta
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256())
        )
        cert_file, key_file = directory / "untrusted.crt", directory / "untrusted.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                body = b'{"status": "ok"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"https://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
