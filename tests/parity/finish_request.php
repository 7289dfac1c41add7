<?php
// fastcgi_finish_request(): buffered output and headers go out, the response ends; what the
// script prints afterwards is discarded, and a second call returns false.
header("X-Finish: yes");
echo "visible\n";
ob_start();
echo "buffered, sent by fastcgi_finish_request\n";
$first = fastcgi_finish_request();
$second = fastcgi_finish_request();
echo "discarded: ", var_export([$first, $second], true), "\n";
flush();
echo str_repeat("x", 1000), "\n";
