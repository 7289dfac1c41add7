<?php
// Worker mode (fephp_worker): the application boots once per executor, then serves requests.
$app = require __DIR__ . '/bootstrap.php';
while (fephp_handle_request(function () use ($app) { $app->handle(); })) {
}
