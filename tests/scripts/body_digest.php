<?php
// What PHP read of the request body, as lengths and sha1s: php://input, $_POST['a'] and the
// upload $_FILES['f'] (tests/nginx_request_body.rs compares them with what it sent).
header('Content-Type: text/plain');
$in = file_get_contents('php://input');
printf("input %d %s\n", strlen($in), sha1($in));
$a = $_POST['a'] ?? '';
printf("post %d %s\n", strlen($a), sha1($a));
$f = $_FILES['f'] ?? null;
if ($f === null) {
    echo "file none\n";
} else {
    printf("file %d %d %s\n", $f['error'], $f['size'], $f['error'] === UPLOAD_ERR_OK ? sha1_file($f['tmp_name']) : '-');
}
printf("content_length %s\n", $_SERVER['CONTENT_LENGTH'] ?? '');
