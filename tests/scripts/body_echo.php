<?php
// Echoes what PHP read of the request body: $_POST['a'] for a form, php://input otherwise.
header('Content-Type: application/octet-stream');
if (($_SERVER['CONTENT_TYPE'] ?? '') === 'application/x-www-form-urlencoded') {
    echo $_POST['a'] ?? '';
} else {
    echo file_get_contents('php://input');
}
