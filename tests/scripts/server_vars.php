<?php
header('Content-Type: application/json');
$keys = ['REQUEST_METHOD', 'REQUEST_URI', 'QUERY_STRING', 'SCRIPT_NAME', 'SCRIPT_FILENAME', 'PATH_INFO',
    'DOCUMENT_ROOT', 'DOCUMENT_URI', 'SERVER_PROTOCOL', 'GATEWAY_INTERFACE', 'SERVER_SOFTWARE', 'REMOTE_ADDR',
    'REMOTE_PORT', 'SERVER_ADDR', 'SERVER_PORT', 'SERVER_NAME', 'HTTP_HOST', 'HTTP_X_CUSTOM', 'CONTENT_TYPE',
    'CONTENT_LENGTH', 'REQUEST_SCHEME', 'HTTPS', 'PHP_SELF', 'REDIRECT_STATUS'];
$out = [];
foreach ($keys as $k) { $out[$k] = $_SERVER[$k] ?? null; }
echo json_encode($out);
