<?php
// php -S router: /simplesaml/<file>.php/<pathinfo> -> www/<file>.php
$www = '/usr/share/simplesamlphp/www';
$uri = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
if (strpos($uri, '/simplesaml/') !== 0) { http_response_code(404); return true; }
$rest = substr($uri, strlen('/simplesaml/'));
if ($rest === '') $rest = 'index.php';
if (preg_match('#^(.*?\.php)(/.*)?$#', $rest, $m)) {
    $file = $www . '/' . $m[1];
    if (!is_file($file)) { http_response_code(404); return true; }
    $_SERVER['SCRIPT_NAME'] = '/simplesaml/' . $m[1];
    $_SERVER['SCRIPT_FILENAME'] = $file;
    $_SERVER['PHP_SELF'] = '/simplesaml/' . $rest;
    if (isset($m[2])) $_SERVER['PATH_INFO'] = $m[2];
    chdir(dirname($file));
    require $file;
    return true;
}
$file = $www . '/' . $rest;
if (is_file($file)) { readfile($file); return true; }
http_response_code(404);
return true;
