<?php
/* Roundcube for EmBoux (issue 13), rendered by docker/render.sh from
 * docker/webmail/config.inc.php: by ./dev up (scripts/dev/stack-webmail.sh)
 * and by the webmail container (docker/webmail-entrypoint.sh). Options not
 * set here are Debian's defaults (defaults.inc.php beside this file).
 *
 * Roundcube logs in against our Dovecot and sends through our submission
 * service with the user's own credentials, so the outbound policy (caps,
 * sender checks) and DKIM signing apply to webmail exactly as to any mail
 * client. It never touches the mail DB: its own state (sessions, contacts,
 * preferences) lives in a small SQLite file, and a password change goes to
 * the connector (POST /mailbox/password), which writes the hash.
 */
$config = [];

$config['db_dsnw'] = 'sqlite:///{{WEBMAIL_DB}}?mode=0640';

// IMAP: STARTTLS (tls://) or implicit TLS (ssl://), the certificate checked
// against the platform's CA for the mail host's name.
$config['imap_host'] = '{{WEBMAIL_IMAP_URI}}';
$config['smtp_host'] = '{{WEBMAIL_SMTP_URI}}';
$config['smtp_user'] = '%u';
$config['smtp_pass'] = '%p';
$tls = ['ssl' => [
    'verify_peer' => true,
    'verify_peer_name' => true,
    'peer_name' => '{{MAIL_HOSTNAME}}',
    'cafile' => '{{WEBMAIL_TLS_CA}}',
]];
$config['imap_conn_options'] = $tls;
$config['smtp_conn_options'] = $tls;
$config['managesieve_conn_options'] = $tls;
// Logins are full addresses (user@domain); nothing is appended.
$config['username_domain'] = '';
$config['login_lc'] = 2;

$config['product_name'] = '{{WEBMAIL_PRODUCT_NAME}}';
$config['support_url'] = '';
$config['des_key'] = '{{WEBMAIL_DES_KEY}}';
$config['skin'] = 'elastic';
$config['enable_spellcheck'] = false;
$config['enable_installer'] = false;
$config['temp_dir'] = '{{WEBMAIL_TEMP_DIR}}';
$config['log_driver'] = '{{WEBMAIL_LOG_DRIVER}}';
$config['log_dir'] = '{{WEBMAIL_LOG_DIR}}';
// Behind a TLS reverse proxy (README, Production) the session cookie is
// Secure; plain http is for the loopback dev stack only.
$config['use_https'] = {{WEBMAIL_USE_HTTPS}};
$config['session_lifetime'] = 30;
$config['ip_check'] = true;
$config['login_rate_limit'] = 3;

$config['plugins'] = {{WEBMAIL_PLUGINS}};

// The password plugin: the mailbox holder changes their own password.
// Roundcube checks the current password against the session first; the
// connector checks it again (it is the credential of POST /mailbox/password)
// and stores only the hash. httpapi posts form fields; 2xx = done.
$config['password_driver'] = 'httpapi';
$config['password_confirm_current'] = true;
$config['password_minimum_length'] = 8;
$config['password_require_nonalpha'] = false;
$config['password_log'] = false;
$config['password_httpapi_url'] = '{{WEBMAIL_PASSWORD_API}}/mailbox/password';
$config['password_httpapi_method'] = 'POST';
$config['password_httpapi_var_user'] = 'email';
$config['password_httpapi_var_curpass'] = 'current_password';
$config['password_httpapi_var_newpass'] = 'new_password';
$config['password_httpapi_expect'] = '/Password updated/';
$config['password_http_client'] = ['timeout' => 30];

// managesieve (only listed in plugins when Dovecot serves ManageSieve).
$config['managesieve_host'] = '{{WEBMAIL_SIEVE_URI}}';
