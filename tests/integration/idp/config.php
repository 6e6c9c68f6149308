<?php
/* SimpleSAMLphp 1.19 (Debian) as the test identity provider: every path
 * comes from the environment, so a test keeps all its state in its own
 * temporary folder. */
$d = getenv('GH_SSP_DIR');
$config = [
    'baseurlpath' => getenv('GH_SSP_BASE'),
    'certdir' => $d . '/cert/',
    'loggingdir' => $d . '/log/',
    'datadir' => $d . '/data/',
    'tempdir' => $d . '/tmp/',
    'metadatadir' => $d . '/config/metadata/',
    'technicalcontact_name' => 'Test',
    'technicalcontact_email' => 'test@example.org',
    'timezone' => 'UTC',
    'secretsalt' => getenv('GH_SSP_SALT'),
    'auth.adminpassword' => getenv('GH_SSP_SALT'),
    'admin.protectindexpage' => true,
    'admin.protectmetadata' => false,
    'logging.level' => SimpleSAML\Logger::INFO,
    'logging.handler' => 'file',
    'logging.logfile' => 'ssp.log',
    'enable.saml20-idp' => true,
    'enable.shib13-idp' => false,
    'store.type' => 'phpsession',
    'session.cookie.secure' => false,
    'session.cookie.name' => 'SSP' . getenv('GH_SSP_PORT'),
    'session.phpsession.cookiename' => 'PHPSESS' . getenv('GH_SSP_PORT'),
    'session.phpsession.savepath' => $d . '/tmp/',
    'session.authtoken.cookiename' => 'SSPAuth' . getenv('GH_SSP_PORT'),
    'language.default' => 'en',
    'module.enable' => ['exampleauth' => true, 'core' => true, 'saml' => true],
];
