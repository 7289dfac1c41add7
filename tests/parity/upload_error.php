<?php foreach ($_FILES as $k => $f) { echo $k, " error=", $f["error"], " size=", $f["size"], "\n"; } var_export($_POST);
