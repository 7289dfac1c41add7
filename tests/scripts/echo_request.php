<?php
header('Content-Type: application/json');
echo json_encode([
    'get' => $_GET, 'post' => $_POST, 'cookie' => $_COOKIE,
    'files' => array_map(fn ($f) => ['name' => $f['name'], 'size' => $f['size'], 'error' => $f['error'],
        'sha1' => is_file($f['tmp_name']) ? sha1_file($f['tmp_name']) : null], $_FILES),
    'input_len' => strlen(file_get_contents('php://input')),
    'input_sha1' => sha1(file_get_contents('php://input')),
]);
