<?php
http_response_code(418);
header('X-Custom: one');
header('X-Multi: a', false);
header('X-Multi: b', false);
setcookie('first', '1');
setcookie('second', '2', ['path' => '/x', 'httponly' => true]);
echo "teapot\n";
