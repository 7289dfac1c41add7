<?php
var_export($_POST);
foreach ($_FILES as $k => $f) { echo "\n$k: ", $f["name"], " ", $f["type"], " ", $f["size"], " ", $f["error"], " ", is_uploaded_file($f["tmp_name"]) ? "uploaded" : "not", " ", md5_file($f["tmp_name"]); }
